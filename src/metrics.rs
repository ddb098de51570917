//! The `metrics` feature: [`crate::Queue::report_metrics`] reports a
//! [`Stats`] snapshot through the `metrics` facade, to whatever recorder the
//! program installed. With the feature on, the sweeper thread also reports
//! after every sweep.
//!
//! Every metric carries the label `queue`: the queue's name, or, for a
//! second (third, ...) live queue of the same name in the process, the name
//! with `#2` (`#3`, ...), so that two queues never write into the same
//! counters. Per-group metrics also carry `group`: a named group's name
//! (`Queue::subscribe_group`; a name that starts with `#` gets one more
//! `#`, so `##0` is the group named `#0`), or `#0`, `#1`, ... for anonymous
//! groups (the smallest number free when the group subscribed): stable
//! while the group lives and bounded by how many live at once, never a
//! fresh UUID per subscription.
//!
//! Labels are reused: a queue's label when its last handle drops, a group's
//! when its last handle drops. Counters are reported as absolute values
//! (a recorder keeps the largest it was given), so a label's counters must
//! never start again from 0 under a new owner, which would hide the new
//! owner's counts behind the old one's. Hence, per label, under one lock:
//! - whoever holds a label is recorded (the queue's UUID; the group's UUID,
//!   claimed when the group gets its label, before any report can name it);
//! - when the holder goes, its final counts are reported (the queue's, and
//!   those of its groups; a group's, with its lag and members at 0) and
//!   added to what the label carries, before the label is free: a group's
//!   inside the queue's directory lock, which is what frees the label;
//! - every report adds what the label carries to the holder's own counts,
//!   and a report of a group or queue that no longer holds its label (a
//!   snapshot taken before it went) is not made.
//!
//! So a label's counter counts every event once, under the holder of the
//! time, and never goes backwards. A queue whose last handle dropped
//! reports nothing more (its consumers may still read what is left).
//!
//! | metric | kind | what |
//! |---|---|---|
//! | `chunkq_len` | gauge | items some group has not read yet |
//! | `chunkq_retained` | gauge | retained items, read or not |
//! | `chunkq_memory_used_bytes` | gauge | accounted bytes in use |
//! | `chunkq_memory_limit_bytes` | gauge | the budget |
//! | `chunkq_oldest_age_seconds` | gauge | age of the oldest retained item (0 when empty) |
//! | `chunkq_groups` | gauge | registered consumer groups |
//! | `chunkq_pushed_total` | counter | items pushed |
//! | `chunkq_refused_total` | counter | pushes refused as `Full` or `TooLarge` |
//! | `chunkq_released_total` | counter | items released after every group read them |
//! | `chunkq_expired_total` | counter | items removed by expiry |
//! | `chunkq_evicted_total` | counter | items removed by eviction |
//! | `chunkq_group_lag` | gauge | items a group has not read yet |
//! | `chunkq_group_members` | gauge | handles of a group |
//! | `chunkq_group_missed_total` | counter, label `cause` = `expired` / `evicted` / `abandoned` | items a group missed |

use crate::consumer::Missed;
use crate::group::Label;
use crate::stats::Stats;
use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex, MutexGuard};
use uuid::Uuid;

/// The queue counters, in the order of [`queue_counters`].
const QUEUE_COUNTERS: [&str; 5] = [
    "chunkq_pushed_total",
    "chunkq_refused_total",
    "chunkq_released_total",
    "chunkq_expired_total",
    "chunkq_evicted_total",
];

/// The causes of `chunkq_group_missed_total`, in the order of
/// [`missed_counters`].
const CAUSES: [&str; 3] = ["expired", "evicted", "abandoned"];

/// The `queue` labels of the live queues of this process, and what every
/// label ever used carries over from its earlier holders.
#[derive(Default)]
struct Labels {
    /// Each live queue's label, by its UUID.
    by_id: HashMap<Uuid, String>,
    /// The instance numbers in use, by queue name (1 is the bare name).
    taken: HashMap<String, BTreeSet<u32>>,
    /// Each live queue's name and instance number, by its UUID.
    instance: HashMap<Uuid, (String, u32)>,
    /// By `queue` label: what its counters carry (bounded by the labels
    /// ever used, as the series in a metrics backend are).
    carried: HashMap<String, Carried>,
}

/// What one `queue` label's counters carry from the queues (and groups)
/// that held it before.
#[derive(Default)]
struct Carried {
    /// The final queue counters of earlier holders, summed.
    queue: [u64; 5],
    /// By `group` label.
    groups: HashMap<String, GroupSeries>,
}

/// One `group` label of a queue label.
#[derive(Default)]
struct GroupSeries {
    /// The live group that holds the label, if any.
    holder: Option<Uuid>,
    /// The final missed counts of earlier holders, summed.
    carried: [u64; 3],
}

/// What to hand the recorder, worked out under the lock and reported after
/// it (a recorder is user code).
#[derive(Default)]
struct Report {
    /// `(name, queue, value)`.
    gauges: Vec<(&'static str, String, f64)>,
    /// `(name, queue, value)`.
    counters: Vec<(&'static str, String, u64)>,
    /// `(name, queue, group, value)`.
    group_gauges: Vec<(&'static str, String, String, f64)>,
    /// `(cause, queue, group, value)` of `chunkq_group_missed_total`.
    missed: Vec<(&'static str, String, String, u64)>,
}

/// The process's labels.
fn labels() -> MutexGuard<'static, Labels> {
    static LABELS: LazyLock<Mutex<Labels>> = LazyLock::new(Default::default);
    LABELS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `group` label of a group labelled `label`.
fn group_label(label: &Label) -> String {
    match label {
        // A leading `#` doubled, so that no name reads as a number.
        Label::Named(name) if name.starts_with('#') => format!("#{name}"),
        Label::Named(name) => name.to_string(),
        Label::Anonymous(n) => format!("#{n}"),
    }
}

/// A queue's own counters, in the order of [`QUEUE_COUNTERS`].
fn queue_counters(stats: &Stats) -> [u64; 5] {
    [
        stats.pushed,
        stats.refused,
        stats.released,
        stats.expired,
        stats.evicted,
    ]
}

/// A group's own missed counts, in the order of [`CAUSES`].
fn missed_counters(missed: &Missed) -> [u64; 3] {
    [missed.expired, missed.evicted, missed.abandoned]
}

/// `a + b`, element by element (saturating).
fn add<const N: usize>(a: [u64; N], b: [u64; N]) -> [u64; N] {
    std::array::from_fn(|i| a[i].saturating_add(b[i]))
}

/// Gives the queue `id` named `name` its `queue` label: the name for the
/// first live queue of that name, `name#k` for the smallest free `k >= 2`.
pub(crate) fn register(name: &str, id: Uuid) {
    let mut l = labels();
    let taken = l.taken.entry(name.to_owned()).or_default();
    let k = (1..).find(|k| !taken.contains(k)).unwrap_or(u32::MAX);
    taken.insert(k);
    let label = if k == 1 {
        name.to_owned()
    } else {
        format!("{name}#{k}")
    };
    l.by_id.insert(id, label);
    l.instance.insert(id, (name.to_owned(), k));
}

/// The queue `id` (its last handle dropped) goes: reports `last`, its
/// final snapshot, adds its counters (and those of its groups) to what its
/// label carries, and frees the label.
pub(crate) fn unregister(id: Uuid, last: &Stats) {
    let mut report = Report::default();
    {
        let mut guard = labels();
        let l = &mut *guard;
        let Some(queue) = l.by_id.remove(&id) else {
            return;
        };
        plan(l, &queue, last, &mut report);
        let carried = l.carried.entry(queue).or_default();
        carried.queue = add(carried.queue, queue_counters(last));
        for g in &last.groups {
            let Some(label) = &g.label else { continue };
            if let Some(series) = carried.groups.get_mut(&group_label(label))
                && series.holder == Some(g.id)
            {
                series.carried = add(series.carried, missed_counters(&g.missed));
            }
        }
        // Its groups go with it, reported or not (one that joined after
        // the snapshot has counted nothing the metrics could have shown).
        for series in carried.groups.values_mut() {
            series.holder = None;
        }
        if let Some((name, k)) = l.instance.remove(&id)
            && let Some(taken) = l.taken.get_mut(&name)
        {
            taken.remove(&k);
            if taken.is_empty() {
                l.taken.remove(&name);
            }
        }
    }
    emit(report);
}

/// The group `group` of the queue `queue` took the label `label`: from now
/// on reports of it continue what the label carries. Called before the
/// label is set on the group, so no report names it before.
pub(crate) fn claim_group(queue: Uuid, label: &Label, group: Uuid) {
    let mut guard = labels();
    let l = &mut *guard;
    let Some(q) = l.by_id.get(&queue) else {
        return; // the queue's last handle dropped: nothing is reported
    };
    let carried = l.carried.entry(q.clone()).or_default();
    carried.groups.entry(group_label(label)).or_default().holder = Some(group);
}

/// The group `group` of the queue `queue`, labelled `label`, lost its last
/// handle: reports its final `missed` counts (and its lag and members as
/// 0), and adds them to what the label carries. Called before the label is
/// free for another group.
pub(crate) fn release_group(queue: Uuid, label: &Label, group: Uuid, missed: &Missed) {
    let mut report = Report::default();
    {
        let mut guard = labels();
        let l = &mut *guard;
        let Some(q) = l.by_id.get(&queue) else {
            return; // reported, and carried, when the queue went
        };
        let glabel = group_label(label);
        let Some(series) = l.carried.get_mut(q).and_then(|c| c.groups.get_mut(&glabel)) else {
            return;
        };
        if series.holder != Some(group) {
            return;
        }
        let total = add(series.carried, missed_counters(missed));
        series.carried = total;
        series.holder = None;
        for (name, value) in [("chunkq_group_lag", 0.0), ("chunkq_group_members", 0.0)] {
            report
                .group_gauges
                .push((name, q.clone(), glabel.clone(), value));
        }
        for (cause, value) in CAUSES.into_iter().zip(total) {
            report
                .missed
                .push((cause, q.clone(), glabel.clone(), value));
        }
    }
    emit(report);
}

/// Reports `stats` to the installed recorder (see the module docs).
pub(crate) fn report(stats: &Stats) {
    let mut report = Report::default();
    {
        let mut guard = labels();
        let l = &mut *guard;
        let Some(queue) = l.by_id.get(&stats.id) else {
            return; // the queue's last handle dropped
        };
        let queue = queue.clone();
        plan(l, &queue, stats, &mut report);
    }
    emit(report);
}

/// What reporting `stats` under the label `queue` hands the recorder: the
/// gauges, and the counters plus what the labels carry, for the groups
/// that still hold their labels.
fn plan(l: &mut Labels, queue: &str, stats: &Stats, report: &mut Report) {
    let gauges = [
        ("chunkq_len", stats.len as f64),
        ("chunkq_retained", stats.retained as f64),
        ("chunkq_memory_used_bytes", stats.memory_used as f64),
        ("chunkq_memory_limit_bytes", stats.memory_limit as f64),
        (
            "chunkq_oldest_age_seconds",
            stats.oldest_age.map_or(0.0, |a| a.as_secs_f64()),
        ),
        ("chunkq_groups", stats.groups.len() as f64),
    ];
    for (name, value) in gauges {
        report.gauges.push((name, queue.to_owned(), value));
    }
    let carried = l.carried.entry(queue.to_owned()).or_default();
    let totals = add(carried.queue, queue_counters(stats));
    for (name, value) in QUEUE_COUNTERS.into_iter().zip(totals) {
        report.counters.push((name, queue.to_owned(), value));
    }
    for g in &stats.groups {
        // Unset: registering at this very moment, reported next time.
        let Some(label) = &g.label else { continue };
        let glabel = group_label(label);
        let Some(series) = carried.groups.get(&glabel) else {
            continue;
        };
        if series.holder != Some(g.id) {
            // Gone since the snapshot: its final counts were reported.
            continue;
        }
        let gauges = [
            ("chunkq_group_lag", g.lag as f64),
            ("chunkq_group_members", g.members as f64),
        ];
        for (name, value) in gauges {
            report
                .group_gauges
                .push((name, queue.to_owned(), glabel.clone(), value));
        }
        let totals = add(series.carried, missed_counters(&g.missed));
        for (cause, value) in CAUSES.into_iter().zip(totals) {
            report
                .missed
                .push((cause, queue.to_owned(), glabel.clone(), value));
        }
    }
}

/// Hands `report` to the installed recorder.
fn emit(report: Report) {
    for (name, queue, value) in report.gauges {
        metrics::gauge!(name, "queue" => queue).set(value);
    }
    for (name, queue, value) in report.counters {
        metrics::counter!(name, "queue" => queue).absolute(value);
    }
    for (name, queue, group, value) in report.group_gauges {
        metrics::gauge!(name, "queue" => queue, "group" => group).set(value);
    }
    for (cause, queue, group, value) in report.missed {
        metrics::counter!(
            "chunkq_group_missed_total",
            "queue" => queue,
            "group" => group,
            "cause" => cause
        )
        .absolute(value);
    }
}

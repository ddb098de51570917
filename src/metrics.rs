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
//! when its last handle drops. Counters are reported as *increments*: each
//! report of a queue (or group) hands the recorder what it counted since
//! its previous report, and the recorder sums. So a label's counter goes
//! on under a new holder where the old one left off, counts every event
//! once, and never goes backwards, and chunkq keeps nothing for a label
//! whose holder is gone: what it keeps is bounded by the queues and groups
//! alive now, however many names a long-lived process has used (the
//! series themselves live in the recorder, bounded as its backend bounds
//! them). Per live queue and per live group, under one lock:
//! - what it has reported so far (the largest snapshot reported: a snapshot
//!   taken before another but reported after it adds nothing);
//! - when it goes, its final counts are reported (a queue's, and those of
//!   its groups; a group's, with its lag and members at 0), and its record
//!   removed, before its label is free: a group's inside the queue's
//!   directory lock, which is what frees the label;
//! - a report of a group or queue that no longer holds its label (a
//!   snapshot taken before it went) is not made.
//!
//! A recorder installed after a queue has reported sees the counts from
//! then on, as with any counter incremented through the `metrics` facade;
//! `report_metrics` calls under different local recorders split the counts
//! between them. A queue whose last handle dropped reports nothing more
//! (its consumers may still read what is left).
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

/// The `queue` labels of the live queues of this process, and what each
/// live queue and group has reported.
#[derive(Default)]
struct Labels {
    /// Each live queue, by its UUID.
    live: HashMap<Uuid, LiveQueue>,
    /// The instance numbers in use, by queue name (1 is the bare name).
    taken: HashMap<String, BTreeSet<u32>>,
}

/// A live queue's metrics record.
struct LiveQueue {
    /// Its `queue` label.
    label: String,
    /// Its name and instance number (the key into `Labels::taken`).
    instance: (String, u32),
    /// Its counters as last reported (the recorder has them all).
    reported: [u64; 5],
    /// Its live labelled groups, by group UUID.
    groups: HashMap<Uuid, LiveGroup>,
}

/// A live group's metrics record.
struct LiveGroup {
    /// Its `group` label.
    label: String,
    /// Its missed counts as last reported.
    reported: [u64; 3],
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

/// Raises `reported` to `now` and returns by how much each grew (0 where
/// `now` is an older snapshot's).
fn advance<const N: usize>(reported: &mut [u64; N], now: [u64; N]) -> [u64; N] {
    std::array::from_fn(|i| {
        let grew = now[i].saturating_sub(reported[i]);
        reported[i] = reported[i].max(now[i]);
        grew
    })
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
    let queue = LiveQueue {
        label,
        instance: (name.to_owned(), k),
        reported: [0; 5],
        groups: HashMap::new(),
    };
    l.live.insert(id, queue);
}

/// The queue `id` (its last handle dropped) goes: reports `last`, its
/// final snapshot (its groups' too), forgets it, and frees its label.
pub(crate) fn unregister(id: Uuid, last: &Stats) {
    let mut report = Report::default();
    {
        let mut l = labels();
        let Some(mut queue) = l.live.remove(&id) else {
            return;
        };
        plan(&mut queue, last, &mut report);
        let (name, k) = queue.instance;
        if let Some(taken) = l.taken.get_mut(&name) {
            taken.remove(&k);
            if taken.is_empty() {
                l.taken.remove(&name);
            }
        }
    }
    emit(report);
}

/// The group `group` of the queue `queue` took the label `label` (the
/// group is new: it has counted nothing yet): from now on it is reported.
/// Called before the label is set on the group, so no report names it
/// before.
pub(crate) fn claim_group(queue: Uuid, label: &Label, group: Uuid) {
    let mut l = labels();
    let Some(q) = l.live.get_mut(&queue) else {
        return; // the queue's last handle dropped: nothing is reported
    };
    let record = LiveGroup {
        label: group_label(label),
        reported: [0; 3],
    };
    q.groups.insert(group, record);
}

/// The group `group` of the queue `queue` lost its last handle: reports
/// what its final `missed` counts add, and its lag and members as 0, and
/// forgets it. Called before its label is free for another group.
pub(crate) fn release_group(queue: Uuid, group: Uuid, missed: &Missed) {
    let mut report = Report::default();
    {
        let mut l = labels();
        let Some(q) = l.live.get_mut(&queue) else {
            return; // reported when the queue went
        };
        let Some(mut g) = q.groups.remove(&group) else {
            return;
        };
        plan_group(&mut report, &q.label, &mut g, 0, 0, missed);
    }
    emit(report);
}

/// Reports `stats` to the installed recorder (see the module docs).
pub(crate) fn report(stats: &Stats) {
    let mut report = Report::default();
    {
        let mut l = labels();
        let Some(queue) = l.live.get_mut(&stats.id) else {
            return; // the queue's last handle dropped
        };
        plan(queue, stats, &mut report);
    }
    emit(report);
}

/// What reporting `stats` of `queue` hands the recorder: the gauges, and
/// what the counters grew since the last report, for the queue and for
/// the groups that are still live.
fn plan(queue: &mut LiveQueue, stats: &Stats, report: &mut Report) {
    let label = &queue.label;
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
        report.gauges.push((name, label.clone(), value));
    }
    let grew = advance(&mut queue.reported, queue_counters(stats));
    for (name, value) in QUEUE_COUNTERS.into_iter().zip(grew) {
        report.counters.push((name, label.clone(), value));
    }
    for g in &stats.groups {
        let Some(record) = queue.groups.get_mut(&g.id) else {
            // Gone since the snapshot (its final counts were reported), or
            // registering at this very moment (reported next time).
            continue;
        };
        plan_group(report, label, record, g.lag, g.members, &g.missed);
    }
}

/// What reporting one group of the queue labelled `queue` hands the
/// recorder: its lag and members, and what its missed counts grew since
/// its last report (which `group` now records).
fn plan_group(
    report: &mut Report,
    queue: &str,
    group: &mut LiveGroup,
    lag: usize,
    members: usize,
    missed: &Missed,
) {
    let gauges = [
        ("chunkq_group_lag", lag as f64),
        ("chunkq_group_members", members as f64),
    ];
    for (name, value) in gauges {
        report
            .group_gauges
            .push((name, queue.to_owned(), group.label.clone(), value));
    }
    let grew = advance(&mut group.reported, missed_counters(missed));
    for (cause, value) in CAUSES.into_iter().zip(grew) {
        report
            .missed
            .push((cause, queue.to_owned(), group.label.clone(), value));
    }
}

/// Hands `report` to the installed recorder.
fn emit(report: Report) {
    for (name, queue, value) in report.gauges {
        metrics::gauge!(name, "queue" => queue).set(value);
    }
    for (name, queue, value) in report.counters {
        metrics::counter!(name, "queue" => queue).increment(value);
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
        .increment(value);
    }
}

#[cfg(test)]
mod tests {
    use super::advance;

    #[test]
    fn an_older_snapshot_reported_late_adds_nothing() {
        let mut reported = [0u64; 3];
        assert_eq!(advance(&mut reported, [5, 0, 2]), [5, 0, 2]);
        // A newer snapshot adds what grew.
        assert_eq!(advance(&mut reported, [7, 1, 2]), [2, 1, 0]);
        // A snapshot taken before that one, reported after it: nothing,
        // and the record keeps the larger counts.
        assert_eq!(advance(&mut reported, [6, 1, 2]), [0, 0, 0]);
        assert_eq!(reported, [7, 1, 2]);
        assert_eq!(advance(&mut reported, [8, 1, 3]), [1, 0, 1]);
    }
}

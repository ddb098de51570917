//! The `metrics` feature: [`crate::Queue::report_metrics`] reports a
//! [`Stats`] snapshot through the `metrics` facade, to whatever recorder the
//! program installed. With the feature on, the sweeper thread also reports
//! after every sweep.
//!
//! Every metric carries the label `queue`: the queue's name, or, for a
//! second (third, ...) live queue of the same name in the process, the name
//! with `#2` (`#3`, ...), so that two queues never write into the same
//! counters. Per-group metrics also carry `group`: a named group's name
//! (`Queue::subscribe_group`), or `#0`, `#1`, ... for anonymous groups (the
//! smallest number free when the group subscribed): stable while the group
//! lives and bounded by how many live at once, never a fresh UUID per
//! subscription. Counters are reported as absolute values (they run from
//! the queue's or the group's creation); a queue whose last handle dropped
//! reports nothing more.
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

use crate::group::Label;
use crate::stats::Stats;
use std::collections::{BTreeSet, HashMap};
use std::sync::{LazyLock, Mutex, MutexGuard};
use uuid::Uuid;

/// The `queue` labels of the live queues of this process.
#[derive(Default)]
struct Labels {
    /// Each live queue's label, by its UUID.
    by_id: HashMap<Uuid, String>,
    /// The instance numbers in use, by queue name (1 is the bare name).
    taken: HashMap<String, BTreeSet<u32>>,
    /// Each live queue's name and instance number, by its UUID.
    instance: HashMap<Uuid, (String, u32)>,
}

/// The process's labels.
fn labels() -> MutexGuard<'static, Labels> {
    static LABELS: LazyLock<Mutex<Labels>> = LazyLock::new(Default::default);
    LABELS.lock().unwrap_or_else(|e| e.into_inner())
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

/// Frees the label of the queue `id` (its last handle dropped).
pub(crate) fn unregister(id: Uuid) {
    let mut l = labels();
    l.by_id.remove(&id);
    if let Some((name, k)) = l.instance.remove(&id) {
        if let Some(taken) = l.taken.get_mut(&name) {
            taken.remove(&k);
            if taken.is_empty() {
                l.taken.remove(&name);
            }
        }
    }
}

/// Reports `stats` to the installed recorder (see the module docs).
pub(crate) fn report(stats: &Stats) {
    let Some(queue) = labels().by_id.get(&stats.id).cloned() else {
        return; // the queue's last handle dropped
    };
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
        metrics::gauge!(name, "queue" => queue.clone()).set(value);
    }
    let counters = [
        ("chunkq_pushed_total", stats.pushed),
        ("chunkq_refused_total", stats.refused),
        ("chunkq_released_total", stats.released),
        ("chunkq_expired_total", stats.expired),
        ("chunkq_evicted_total", stats.evicted),
    ];
    for (name, value) in counters {
        metrics::counter!(name, "queue" => queue.clone()).absolute(value);
    }
    for g in &stats.groups {
        let group = match &g.label {
            Some(Label::Named(name)) => name.to_string(),
            Some(Label::Anonymous(n)) => format!("#{n}"),
            // Registering at this very moment: reported next time.
            None => continue,
        };
        let labels = [("queue", queue.clone()), ("group", group.clone())];
        metrics::gauge!("chunkq_group_lag", &labels).set(g.lag as f64);
        metrics::gauge!("chunkq_group_members", &labels).set(g.members as f64);
        for (cause, value) in [
            ("expired", g.missed.expired),
            ("evicted", g.missed.evicted),
            ("abandoned", g.missed.abandoned),
        ] {
            metrics::counter!(
                "chunkq_group_missed_total",
                "queue" => queue.clone(),
                "group" => group.clone(),
                "cause" => cause
            )
            .absolute(value);
        }
    }
}

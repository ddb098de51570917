//! The `metrics` feature: [`crate::Queue::report_metrics`] reports a
//! [`Stats`] snapshot through the `metrics` facade, to whatever recorder the
//! program installed. With the feature on, the sweeper thread also reports
//! after every sweep.
//!
//! Every metric carries the label `queue` (the queue's name); per-group
//! metrics also `group` (the group's UUID). Counters are reported as
//! absolute values (they run from the queue's creation).
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

use crate::stats::Stats;

/// Reports `stats` to the installed recorder (see the module docs).
pub(crate) fn report(stats: &Stats) {
    let queue = stats.name.clone();
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
        let group = g.id.to_string();
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

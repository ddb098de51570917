//! The groups of one queue by name, and the numbers of its anonymous groups:
//! what `Queue::subscribe_group` joins, and what labels groups in `stats`
//! and metrics (`Label`). Touched only when a group is made, joined, or
//! left by its last handle, under one mutex; never on a read or a push.
//!
//! With the `metrics` feature, a group claims its metrics label before it
//! is labelled, and its final counts are reported before its label is free
//! again (both under the mutex), so a label reused by another group
//! continues the counters of the one before (see `metrics.rs`).

use crate::consumer::Member;
use crate::group::{Group, Label};
use crate::sync::Arc;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// A queue's directory of groups (shared by its `Queue` handles and by the
/// groups' members, which release their entry when the last one drops).
pub(crate) struct Directory<T> {
    /// The entries.
    inner: Mutex<Entries<T>>,
    /// The queue's UUID (what its metrics are reported by).
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    queue: uuid::Uuid,
}

/// A live named group: the group and what its handles share.
type Named<T> = (Arc<Group<T>>, std::sync::Arc<Member<T>>);

/// What [`Directory`] guards.
struct Entries<T> {
    /// Live named groups by name.
    named: HashMap<std::sync::Arc<str>, Named<T>>,
    /// Numbers of the live anonymous groups.
    anonymous: BTreeSet<u32>,
}

impl<T> Directory<T> {
    /// An empty directory of the queue `queue`.
    pub(crate) fn new(queue: uuid::Uuid) -> Self {
        Self {
            inner: Mutex::new(Entries {
                named: HashMap::new(),
                anonymous: BTreeSet::new(),
            }),
            queue,
        }
    }

    /// Labels `group` (newly made) `label`, its metrics label claimed
    /// first. Under the lock (held by the caller), so after the release of
    /// the label's previous holder.
    fn label(&self, group: &Group<T>, label: Label) {
        #[cfg(feature = "metrics")]
        crate::metrics::claim_group(self.queue, &label, group.id());
        group.set_label(label);
    }

    /// Locks the entries (a panic elsewhere leaves them consistent: each
    /// change is one insert or remove).
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<T>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The group named `name` if it lives, with one more handle counted;
    /// otherwise a new one made by `make` and entered under `name`.
    /// Returns the group, its shared member state, and whether it is new.
    pub(crate) fn join_or_make(
        &self,
        name: &str,
        make: impl FnOnce() -> (Arc<Group<T>>, std::sync::Arc<Member<T>>),
    ) -> (Arc<Group<T>>, std::sync::Arc<Member<T>>) {
        let mut entries = self.lock();
        if let Some((group, member)) = entries.named.get(name) {
            // The entry is removed, under this lock, by the drop of the
            // last handle: while it is here the group has a handle, so
            // counting one more cannot revive a deregistered group.
            group.add_handle();
            return (group.clone(), member.clone());
        }
        let (group, member) = make();
        let name: std::sync::Arc<str> = name.into();
        self.label(&group, Label::Named(name.clone()));
        entries.named.insert(name, (group.clone(), member.clone()));
        (group, member)
    }

    /// Labels the new anonymous group `group` with the smallest number
    /// free among the anonymous groups.
    pub(crate) fn label_anonymous(&self, group: &Group<T>) {
        let mut entries = self.lock();
        let n = (0..)
            .find(|n| !entries.anonymous.contains(n))
            .unwrap_or(u32::MAX);
        entries.anonymous.insert(n);
        self.label(group, Label::Anonymous(n));
    }

    /// Drops one handle of `group`; if it was the last, removes the group's
    /// entry (its name or number) and returns `true` (the caller then
    /// deregisters it). Under the lock, so that a join never finds a group
    /// whose last handle is gone.
    pub(crate) fn release(&self, group: &Group<T>) -> bool {
        let mut entries = self.lock();
        if !group.release_handle() {
            return false;
        }
        // Its final counts, before its label is free for another group.
        #[cfg(feature = "metrics")]
        if group.label().is_some() {
            let missed = crate::consumer::missed_of(group);
            crate::metrics::release_group(self.queue, group.id(), &missed);
        }
        match group.label() {
            Some(Label::Named(name)) => {
                entries.named.remove(name);
            }
            Some(Label::Anonymous(n)) => {
                entries.anonymous.remove(n);
            }
            None => {}
        }
        true
    }
}

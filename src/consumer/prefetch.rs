//! Opt-in prefetch for a member of a consumer group ([`Prefetch`]): the
//! member claims up to `k` items at once through the group's batch claim
//! (one CAS on the cursor per up to 64 items, as `try_recv_many`) and serves
//! them one by one from a local buffer, so a contended group pays its cursor
//! CAS once per batch instead of once per item.
//!
//! What the buffer holds was claimed: the group's cursor has passed it and
//! no other member can take it. So it cannot be handed back; dropped, it is
//! counted as missed by the group with the cause [`Missed::abandoned`] (the
//! path a panicking `Consumer::read` closure takes), and `into_inner` hands
//! it to the caller instead.

use super::{Consumer, Missed, count_abandoned};
use crate::engine::Engine;
use crate::envelope::Delivery;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::group::Group;
use crate::sync::Arc;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A member of a consumer group that claims up to `depth` items at once and
/// serves them one by one from its own buffer ([`Consumer::prefetch`]).
///
/// It reads like a [`Consumer`] (`try_recv`, `recv`, `recv_timeout`,
/// `try_iter`, `iter`), in the group's sequence order; when its buffer is
/// empty, one receive claims the next batch (up to `depth` items, in claims
/// of up to 64 within one chunk, each one CAS on the group's cursor) and
/// returns the first. Clones of the underlying consumer still share the
/// cursor; the items this member claimed are its own, and other members read
/// past them.
///
/// **The trade:** a prefetching member holds up to `depth` items that the
/// other members of its group cannot take, even while it is busy with one of
/// them (the others may go idle, and an item waits behind its batch-mates:
/// latency). Choose `depth` about the number of items one member handles in
/// the time the others would otherwise spend waiting on the cursor; `1` is
/// the plain consumer.
///
/// **What it holds is never lost silently.** Dropped with items in its
/// buffer, it counts them as missed by its group, as
/// [`Missed::abandoned`] ([`Consumer::missed`], the notices,
/// [`crate::Queue::stats`], and the in-band gaps of
/// [`Consumer::try_recv_or_missed`] on the group's other handles), exactly
/// once; [`Prefetch::into_inner`] returns them instead. A buffered item
/// stays readable whatever happens to the queue meanwhile: it was delivered
/// to this member when it was claimed, so a later eviction or expiry does
/// not count it as missed (its memory stays in use until the delivery is
/// dropped, as for any [`Delivery`] kept). Its dequeue time
/// ([`Delivery::dequeued_at`]) is when its batch was claimed.
///
/// Gaps in band: [`Consumer::try_recv_or_missed`] is not offered here (use
/// the consumer, or [`Consumer::missed`] through [`Prefetch::get_ref`]); the
/// totals stay exact either way: once the queue is closed and every member
/// has drained, `delivered + missed.total() == pushed` for the group.
///
/// `Send`, so it can move to a worker thread; not meant to be shared
/// (its receives take `&mut self`).
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
///
/// let q: Queue<u32> = Queue::new("work");
/// let c = q.subscribe();
/// let mut fast = c.clone().prefetch(4); // claims 4 at a time
/// q.push_batch(0..8).unwrap();
/// assert_eq!(*fast.try_recv().unwrap().payload(), 0); // claimed 0..4
/// assert_eq!(fast.buffered(), 3);
/// assert_eq!(*c.try_recv().unwrap().payload(), 4); // the others read past them
/// drop(fast); // 1, 2, 3 were this member's: counted, not lost
/// assert_eq!(c.missed().abandoned, 3);
/// let rest: Vec<u32> = c.try_iter().map(|d| *d.payload()).collect();
/// assert_eq!(rest, [5, 6, 7]);
/// ```
pub struct Prefetch<T: Send + Sync + 'static> {
    /// The claimed items not served yet. Declared first: dropped (and
    /// counted) while the group still has this handle.
    buffer: Buffer<T>,
    /// The member that claims.
    consumer: Consumer<T>,
    /// The most items one refill claims (1 ..= `MAX_DEPTH`).
    depth: usize,
}

/// A prefetch buffer that counts what it still holds as abandoned when
/// dropped (apart from `Prefetch`, so `into_inner` can take the consumer
/// and the items out).
struct Buffer<T: Send + Sync + 'static> {
    /// The claimed items, in sequence order.
    items: VecDeque<Delivery<T>>,
    /// The queue (its clock and notice signal).
    shared: Arc<Engine<T>>,
    /// The group whose cursor passed the items.
    group: Arc<Group<T>>,
}

impl<T: Send + Sync + 'static> Drop for Buffer<T> {
    fn drop(&mut self) {
        count_abandoned(&self.shared, &self.group, self.items.len() as u64);
    }
}

impl<T: Send + Sync + 'static> Consumer<T> {
    /// This member as a [`Prefetch`] handle that claims up to `k` items at
    /// once and serves them from its own buffer (see [`Prefetch`] for the
    /// trade: the items it holds are not available to the group's other
    /// members).
    ///
    /// `k` is clamped to `1 ..= Prefetch::MAX_DEPTH`: `0` and `1` both make
    /// a handle that claims one item at a time (the plain `try_recv`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u64> = chunkq::Queue::new("a");
    /// let worker = q.subscribe();
    /// let mut p = worker.clone().prefetch(64);
    /// let t = std::thread::spawn(move || p.iter().map(|d| *d.payload()).sum::<u64>());
    /// q.push_batch(1..=100).unwrap();
    /// q.close();
    /// let mut rest = 0;
    /// while let Ok(d) = worker.recv() { rest += *d.payload(); }
    /// assert_eq!(t.join().unwrap() + rest, 5050); // each item once
    /// assert_eq!(worker.missed().total(), 0);
    /// assert_eq!(q.subscribe().prefetch(0).depth(), 1); // clamped
    /// ```
    #[must_use = "the consumer moves into the handle; dropping it drops the member"]
    pub fn prefetch(self, k: usize) -> Prefetch<T> {
        let depth = k.clamp(1, Prefetch::<T>::MAX_DEPTH);
        Prefetch {
            buffer: Buffer {
                items: VecDeque::with_capacity(depth.min(64)),
                shared: self.shared.clone(),
                group: self.group.clone(),
            },
            consumer: self,
            depth,
        }
    }
}

impl<T: Send + Sync + 'static> Prefetch<T> {
    /// The largest depth [`Consumer::prefetch`] accepts (larger ones are
    /// clamped to it): 65,536 items.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Prefetch, Queue};
    /// let q: Queue<u8> = Queue::new("a");
    /// assert_eq!(q.subscribe().prefetch(usize::MAX).depth(), Prefetch::<u8>::MAX_DEPTH);
    /// ```
    pub const MAX_DEPTH: usize = 1 << 16;

    /// The most items one refill claims (`k` after clamping).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// assert_eq!(q.subscribe().prefetch(16).depth(), 16);
    /// ```
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// How many claimed items the buffer holds now (served before anything
    /// else; counted as abandoned if the handle is dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let mut p = q.subscribe().prefetch(8);
    /// q.push_batch([1, 2, 3]).unwrap();
    /// assert_eq!(p.buffered(), 0);
    /// p.try_recv().unwrap();
    /// assert_eq!(p.buffered(), 2);
    /// ```
    pub fn buffered(&self) -> usize {
        self.buffer.items.len()
    }

    /// The underlying consumer, for its totals and identity
    /// ([`Consumer::missed`], [`Consumer::lag`], [`Consumer::id`],
    /// [`Consumer::notifications`]). Receiving through it directly claims
    /// past this handle's buffer (the buffered items come later on this
    /// handle), as reading a `BufReader`'s inner reader does.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let c = q.subscribe();
    /// let p = c.clone().prefetch(8);
    /// assert_eq!(p.get_ref().id(), c.id());
    /// ```
    pub fn get_ref(&self) -> &Consumer<T> {
        &self.consumer
    }

    /// The consumer back, with the items this handle claimed and had not
    /// served yet, in order: nothing is counted as abandoned (the caller
    /// now holds them).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let mut p = q.subscribe().prefetch(8);
    /// q.push_batch([1, 2, 3]).unwrap();
    /// p.try_recv().unwrap();
    /// let (c, held) = p.into_inner();
    /// assert_eq!(held.iter().map(|d| *d.payload()).collect::<Vec<_>>(), [2, 3]);
    /// assert_eq!(c.missed().abandoned, 0);
    /// ```
    #[must_use = "dropping the returned items loses them uncounted"]
    pub fn into_inner(self) -> (Consumer<T>, Vec<Delivery<T>>) {
        let Prefetch {
            mut buffer,
            consumer,
            ..
        } = self;
        // Taken out, the buffer holds nothing to count when it drops.
        let items = std::mem::take(&mut buffer.items);
        (consumer, items.into())
    }

    /// Takes the next item without blocking: the next buffered one, or, if
    /// the buffer is empty, the first of a new claim of up to `depth` items.
    ///
    /// # Errors
    /// As [`Consumer::try_recv`], when the buffer is empty and nothing could
    /// be claimed.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, TryRecvError};
    /// let q: Queue<u8> = Queue::new("a");
    /// let mut p = q.subscribe().prefetch(2);
    /// assert_eq!(p.try_recv().unwrap_err(), TryRecvError::Empty);
    /// q.push_batch([5, 6]).unwrap();
    /// assert_eq!(*p.try_recv().unwrap().payload(), 5);
    /// q.close();
    /// assert_eq!(*p.try_recv().unwrap().payload(), 6); // buffered
    /// assert_eq!(p.try_recv().unwrap_err(), TryRecvError::Closed);
    /// ```
    #[inline]
    pub fn try_recv(&mut self) -> Result<Delivery<T>, TryRecvError> {
        match self.buffer.items.pop_front() {
            Some(d) => Ok(d),
            None => self.refill(),
        }
    }

    /// Claims up to `depth` items into the (empty) buffer and returns the
    /// first.
    fn refill(&mut self) -> Result<Delivery<T>, TryRecvError> {
        if self.depth == 1 {
            return self.consumer.try_recv();
        }
        let id = self.consumer.group.id();
        let items = &mut self.buffer.items;
        let depth = self.depth;
        // The first claim says why there is nothing; later ones only stop
        // the refill (the items claimed so far are served first).
        self.consumer.claim(depth, |item, at| {
            items.push_back(Delivery::new(item, id, at));
        })?;
        while items.len() < depth {
            match self.consumer.claim(depth - items.len(), |item, at| {
                items.push_back(Delivery::new(item, id, at));
            }) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
        items.pop_front().ok_or(TryRecvError::Empty)
    }

    /// Blocks (the way the consumer waits, [`Consumer::with_wait`]) until an
    /// item is buffered or claimed, or the queue is closed and drained.
    ///
    /// # Errors
    /// [`RecvError`] once the buffer is empty, the queue closed and the group
    /// has read everything.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let mut p = q.subscribe().prefetch(4);
    /// let producer = q.clone();
    /// std::thread::spawn(move || producer.push(9).unwrap());
    /// assert_eq!(*p.recv().unwrap().payload(), 9);
    /// q.close();
    /// assert!(p.recv().is_err());
    /// ```
    pub fn recv(&mut self) -> Result<Delivery<T>, RecvError> {
        loop {
            match self.try_recv() {
                Ok(d) => return Ok(d),
                Err(TryRecvError::Closed) => return Err(RecvError),
                Err(TryRecvError::Empty) => self.consumer.block(None),
            }
        }
    }

    /// As [`Prefetch::recv`], giving up once `timeout` passes.
    ///
    /// # Errors
    /// [`RecvTimeoutError::Timeout`] or [`RecvTimeoutError::Closed`].
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::{Queue, RecvTimeoutError};
    /// use std::time::Duration;
    /// let q: Queue<u8> = Queue::new("a");
    /// let mut p = q.subscribe().prefetch(4);
    /// assert_eq!(p.recv_timeout(Duration::from_millis(5)).unwrap_err(), RecvTimeoutError::Timeout);
    /// q.push(1).unwrap();
    /// assert!(p.recv_timeout(Duration::from_millis(5)).is_ok());
    /// ```
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery<T>, RecvTimeoutError> {
        super::recv_until(self, timeout, Self::try_recv, |p, d| p.consumer.block(d))
    }

    /// An iterator over the items available now: the buffered ones, then
    /// what new claims find (stops at the first `Empty` or `Closed`).
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let mut p = q.subscribe().prefetch(2);
    /// q.push_batch(0..5).unwrap();
    /// let got: Vec<u8> = p.try_iter().map(|d| *d.payload()).collect();
    /// assert_eq!(got, [0, 1, 2, 3, 4]);
    /// ```
    pub fn try_iter(&mut self) -> impl Iterator<Item = Delivery<T>> + '_ {
        std::iter::from_fn(|| self.try_recv().ok())
    }

    /// A blocking iterator that ends when the buffer is empty and the queue
    /// closed and drained.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let mut p = q.subscribe().prefetch(8);
    /// q.push_batch([1, 2]).unwrap();
    /// q.close();
    /// assert_eq!(p.iter().count(), 2);
    /// ```
    pub fn iter(&mut self) -> impl Iterator<Item = Delivery<T>> + '_ {
        std::iter::from_fn(|| self.recv().ok())
    }

    /// The group's miss totals ([`Consumer::missed`]); the items this
    /// handle holds are not among them until it is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// let q: chunkq::Queue<u8> = chunkq::Queue::new("a");
    /// let p = q.subscribe().prefetch(8);
    /// assert_eq!(p.missed().total(), 0);
    /// ```
    pub fn missed(&self) -> Missed {
        self.consumer.missed()
    }
}

impl<T: Send + Sync + 'static> fmt::Debug for Prefetch<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prefetch")
            .field("consumer", &self.consumer)
            .field("depth", &self.depth)
            .field("buffered", &self.buffer.items.len())
            .finish()
    }
}

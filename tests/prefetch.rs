//! `Consumer::prefetch` (issue 17): a group member that claims up to `k`
//! items at once and serves them from its own buffer. Order within a member,
//! exactly-once delivery across prefetching members under producers on
//! threads, the buffer's items counted as abandoned when dropped (and
//! returned by `into_inner`), the clamping of `k`, and what a buffered item
//! is when the queue evicts or expires it meanwhile.

use chunkq::{Clock, Overflow, Prefetch, Queue, Received, TryRecvError};
use std::collections::HashSet;
use std::thread;
use std::time::Duration;

fn payloads(p: &mut Prefetch<u64>) -> Vec<u64> {
    p.try_iter().map(|d| *d.payload()).collect()
}

#[test]
fn prefetch_handle_is_send() {
    fn send<S: Send>() {}
    send::<Prefetch<u64>>();
    send::<Prefetch<String>>();
}

#[test]
fn one_member_reads_in_order_across_refills() {
    let q: Queue<u64> = Queue::new("order");
    let mut p = q.subscribe().prefetch(7);
    q.push_batch(0..1000).unwrap();
    assert_eq!(payloads(&mut p), (0..1000).collect::<Vec<_>>());
    assert_eq!(p.try_recv().unwrap_err(), TryRecvError::Empty);
    q.close();
    assert_eq!(p.try_recv().unwrap_err(), TryRecvError::Closed);
}

#[test]
fn members_interleaved_each_see_increasing_sequences_and_share_everything() {
    let q: Queue<u64> = Queue::new("interleave");
    let c = q.subscribe();
    let mut a = c.clone().prefetch(5);
    let mut b = c.clone().prefetch(3);
    q.push_batch(0..200).unwrap();
    q.close();
    let (mut got_a, mut got_b, mut got_c) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let ra = a.try_recv().map(|d| *d.payload());
        let rb = b.try_recv().map(|d| *d.payload());
        let rc = c.try_recv().map(|d| *d.payload());
        if ra.is_err() && rb.is_err() && rc.is_err() {
            break;
        }
        got_a.extend(ra);
        got_b.extend(rb);
        got_c.extend(rc);
    }
    for got in [&got_a, &got_b, &got_c] {
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "a member out of order: {got:?}"
        );
    }
    assert_eq!(got_a[..5], [0, 1, 2, 3, 4], "a's first batch, in order");
    let mut all: Vec<u64> = got_a.iter().chain(&got_b).chain(&got_c).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..200).collect::<Vec<_>>(), "each item exactly once");
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn a_member_serves_its_batch_before_later_items() {
    let q: Queue<u64> = Queue::new("batch");
    let c = q.subscribe();
    let mut p = c.clone().prefetch(4);
    q.push_batch(0..10).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    assert_eq!(
        *c.try_recv().unwrap().payload(),
        4,
        "the others read past the batch"
    );
    assert_eq!(payloads(&mut p), [1, 2, 3, 5, 6, 7, 8, 9]);
}

/// Two prefetching members and a plain one, three producers on threads, a
/// DropOldest budget small enough to evict: every pushed item is delivered
/// exactly once or counted as missed, and a member dropped mid-stream has
/// its buffered items counted as abandoned exactly.
#[test]
fn prefetching_members_under_producers_deliver_or_count_every_item() {
    const PRODUCERS: u64 = 3;
    const PER: u64 = 20_000;
    let q: Queue<u64> = Queue::builder("contended")
        .memory_limit(64 * 1024)
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap();
    let c = q.subscribe();
    let members: Vec<_> = [16usize, 3, 1]
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            let p = c.clone().prefetch(k);
            thread::spawn(move || {
                let mut p = p;
                let mut got = Vec::new();
                // Member 0 quits after 300 items, with items buffered.
                let quit_after = if i == 0 { 300 } else { usize::MAX };
                while let Ok(d) = p.recv() {
                    got.push(*d.payload());
                    if got.len() >= quit_after && p.buffered() > 0 {
                        break;
                    }
                }
                let dropped_with = p.buffered() as u64;
                drop(p);
                (got, dropped_with)
            })
        })
        .collect();
    let producers: Vec<_> = (0..PRODUCERS)
        .map(|pi| {
            let q = q.clone();
            thread::spawn(move || {
                for i in 0..PER {
                    q.push(pi * PER + i).unwrap();
                }
            })
        })
        .collect();
    for h in producers {
        h.join().unwrap();
    }
    q.close();
    let mut seen = HashSet::new();
    let mut abandoned_by_drops = 0;
    for h in members {
        let (got, dropped_with) = h.join().unwrap();
        abandoned_by_drops += dropped_with;
        for v in got {
            assert!(seen.insert(v), "{v} delivered twice");
        }
    }
    // The plain handle `c` may still read what nobody took.
    while let Ok(d) = c.try_recv() {
        assert!(seen.insert(*d.payload()));
    }
    let m = c.missed();
    assert_eq!(
        m.abandoned, abandoned_by_drops,
        "dropped buffers counted exactly"
    );
    assert_eq!(
        seen.len() as u64 + m.expired + m.evicted + m.abandoned,
        PRODUCERS * PER,
        "delivered + missed == pushed ({m:?})"
    );
    assert_eq!(q.stats().groups[0].missed, m, "stats see the same totals");
}

#[test]
fn dropping_with_buffered_items_counts_them_abandoned_exactly() {
    let q: Queue<u64> = Queue::new("drop");
    let c = q.subscribe();
    let notices = c.notifications();
    let mut p = c.clone().prefetch(10);
    q.push_batch(0..25).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    assert_eq!(*p.try_recv().unwrap().payload(), 1);
    assert_eq!(p.buffered(), 8);
    assert_eq!(p.missed().abandoned, 0, "held items are not missed yet");
    drop(p);
    assert_eq!(c.missed().abandoned, 8);
    assert_eq!(c.missed().total(), 8);
    let n = notices.try_recv().unwrap();
    assert_eq!((n.abandoned, n.expired, n.evicted), (8, 0, 0));
    assert_eq!(q.stats().groups[0].missed.abandoned, 8);
    // The rest is still the group's.
    let rest: Vec<u64> = c.try_iter().map(|d| *d.payload()).collect();
    assert_eq!(rest, (10..25).collect::<Vec<_>>());
    // An empty buffer counts nothing.
    let mut p = c.clone().prefetch(10);
    q.push(99).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 99);
    drop(p);
    assert_eq!(c.missed().abandoned, 8);
}

#[test]
fn dropping_the_last_handle_with_buffered_items_still_counts_them() {
    let q: Queue<u64> = Queue::new("last");
    let c = q.subscribe();
    let notices = c.notifications();
    let mut p = c.prefetch(10);
    q.push_batch(0..5).unwrap();
    p.try_recv().unwrap();
    drop(p); // the group goes with it, after its buffer is counted
    assert_eq!(q.consumer_count(), 0);
    assert_eq!(notices.try_recv().unwrap().abandoned, 4);
}

#[test]
fn abandoned_buffer_is_reported_in_band_to_the_other_members() {
    let q: Queue<u64> = Queue::new("in band");
    let c = q.subscribe();
    let mut p = c.clone().prefetch(4);
    q.push_batch(0..6).unwrap();
    p.try_recv().unwrap();
    drop(p); // 1, 2, 3 abandoned
    match c.try_recv_or_missed().unwrap() {
        Received::Missed(m) => assert_eq!((m.abandoned, m.total()), (3, 3)),
        other => panic!("expected the gap first, got {other:?}"),
    }
    assert_eq!(
        *c.try_recv_or_missed().unwrap().item().unwrap().payload(),
        4
    );
}

#[test]
fn into_inner_returns_the_buffered_items_uncounted() {
    let q: Queue<u64> = Queue::new("into_inner");
    let c = q.subscribe();
    let mut p = c.clone().prefetch(6);
    q.push_batch(0..10).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    let (member, held) = p.into_inner();
    assert_eq!(
        held.iter().map(|d| *d.payload()).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(held.iter().all(|d| d.consumer_id() == c.id()));
    assert_eq!(member.missed().abandoned, 0);
    assert_eq!(*member.try_recv().unwrap().payload(), 6);
    drop(member);
    drop(held);
    assert_eq!(c.missed().total(), 0);
}

#[test]
fn k_is_clamped_to_one_and_max_depth() {
    let q: Queue<u64> = Queue::new("clamp");
    let c = q.subscribe();
    q.push_batch(0..100).unwrap();
    for k in [0, 1] {
        let mut p = c.clone().prefetch(k);
        assert_eq!(p.depth(), 1);
        let lag = c.lag();
        p.try_recv().unwrap();
        assert_eq!(p.buffered(), 0, "k = {k} claims one at a time");
        assert_eq!(c.lag(), lag - 1);
    }
    let mut p = c.clone().prefetch(usize::MAX);
    assert_eq!(p.depth(), Prefetch::<u64>::MAX_DEPTH);
    assert_eq!(*p.try_recv().unwrap().payload(), 2);
    assert_eq!(
        p.buffered(),
        97,
        "claims everything available, across chunks"
    );
    assert_eq!(c.lag(), 0);
    let (_, held) = p.into_inner();
    assert_eq!(held.len(), 97);
}

#[test]
fn a_deep_refill_crosses_chunk_boundaries() {
    let q: Queue<u64> = Queue::new("deep");
    let mut p = q.subscribe().prefetch(1000);
    q.push_batch(0..5000).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    assert_eq!(p.buffered(), 999);
    assert_eq!(payloads(&mut p), (1..5000).collect::<Vec<_>>());
}

/// A buffered item was delivered to its member when claimed: an eviction of
/// its slot afterwards neither takes it away nor counts it as evicted.
#[test]
fn a_buffered_item_evicted_meanwhile_is_still_delivered_not_counted() {
    let q: Queue<u64> = Queue::builder("evict")
        .memory_limit(4 * 1024)
        .overflow(Overflow::DropOldest)
        .build()
        .unwrap();
    let c = q.subscribe();
    let mut p = c.clone().prefetch(8);
    q.push_batch(0..8).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    assert_eq!(p.buffered(), 7);
    // Push far past the budget: the oldest retained items are evicted.
    for i in 100..2100 {
        q.push(i).unwrap();
    }
    let got = payloads(&mut p);
    assert_eq!(got[..7], [1, 2, 3, 4, 5, 6, 7], "the held batch, whole");
    let m = c.missed();
    assert!(m.evicted > 0, "the budget evicted something");
    assert_eq!((m.expired, m.abandoned), (0, 0));
    // Exact: the 8 of the batch were delivered, not also counted evicted.
    assert_eq!(1 + got.len() as u64 + m.evicted, 8 + 2000);
}

/// The same for the TTL: a buffered item that expires meanwhile is served.
#[test]
fn a_buffered_item_expired_meanwhile_is_still_delivered_not_counted() {
    let clock = Clock::manual();
    let q: Queue<u64> = Queue::builder("ttl")
        .ttl(Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let c = q.subscribe();
    let mut p = c.clone().prefetch(8);
    q.push_batch(0..10).unwrap();
    assert_eq!(*p.try_recv().unwrap().payload(), 0);
    clock.advance(Duration::from_secs(2));
    q.expire_now();
    assert_eq!(payloads(&mut p), [1, 2, 3, 4, 5, 6, 7]);
    let m = c.missed();
    assert_eq!(
        (m.expired, m.evicted, m.abandoned),
        (2, 0, 0),
        "only 8 and 9 expired"
    );
}

//! `Wait::Park`, `Wait::Spin` and `Wait::Yield`: blocking receives get every
//! item in order, time out on an empty queue, and end on close, whichever
//! way the handle waits.

use chunkq::{Queue, RecvError, RecvTimeoutError, Wait};
use std::thread;
use std::time::Duration;

const WAYS: [Wait; 3] = [Wait::Park, Wait::Spin, Wait::Yield];

#[test]
fn every_item_arrives_in_order_whichever_way_a_receiver_waits() {
    for wait in WAYS {
        let q: Queue<u64> = Queue::builder("wait")
            .memory_limit(64 << 20)
            .sweep_interval(None)
            .build()
            .unwrap();
        let c = q.subscribe().with_wait(wait);
        let member = c.clone();
        assert_eq!(member.wait(), wait);
        let readers: Vec<_> = [c, member]
            .into_iter()
            .map(|c| {
                thread::spawn(move || {
                    let mut got = Vec::new();
                    while let Ok(d) = c.recv() {
                        got.push(*d.payload());
                    }
                    got
                })
            })
            .collect();
        for i in 0..20_000u64 {
            q.push(i).unwrap();
            if i % 5_000 == 0 {
                // Let the readers find the queue empty and wait.
                thread::sleep(Duration::from_millis(2));
            }
        }
        q.close();
        let mut all: Vec<u64> = Vec::new();
        for r in readers {
            let got = r.join().unwrap();
            assert!(
                got.windows(2).all(|w| w[0] < w[1]),
                "{wait:?}: in order per member"
            );
            all.extend(got);
        }
        all.sort_unstable();
        assert_eq!(all, (0..20_000).collect::<Vec<_>>(), "{wait:?}");
    }
}

#[test]
fn a_timeout_and_a_close_end_the_wait() {
    for wait in WAYS {
        let q: Queue<u64> = Queue::new("wait-end");
        let c = q.subscribe().with_wait(wait);
        assert_eq!(
            c.recv_timeout(Duration::from_millis(5)).unwrap_err(),
            RecvTimeoutError::Timeout,
            "{wait:?}"
        );
        let mut batch = Vec::new();
        let blocked = thread::spawn(move || {
            let end = c.recv().unwrap_err();
            (end, c.recv_many(&mut batch, 8).unwrap_err())
        });
        thread::sleep(Duration::from_millis(2));
        q.close();
        assert_eq!(blocked.join().unwrap(), (RecvError, RecvError), "{wait:?}");
    }
}

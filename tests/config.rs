//! Builder settings: defaults, and invalid input as `ConfigError` (never a
//! panic).

use chunkq::{
    ConfigError, DEFAULT_MEMORY_LIMIT, DEFAULT_SWEEP_INTERVAL, DEFAULT_TTL, Overflow, Queue,
};
use std::time::Duration;

#[test]
fn defaults() {
    assert_eq!(DEFAULT_MEMORY_LIMIT, 1_048_576);
    assert_eq!(DEFAULT_TTL, Duration::from_secs(600));
    assert_eq!(DEFAULT_SWEEP_INTERVAL, Duration::from_secs(30));
    let q: Queue<u8> = Queue::new("defaults");
    assert_eq!(q.memory_limit(), DEFAULT_MEMORY_LIMIT);
    assert_eq!(q.ttl(), DEFAULT_TTL);
    assert_eq!(Overflow::default(), Overflow::Reject);
}

#[test]
fn zero_memory_limit_is_an_error() {
    let r = Queue::<u8>::builder("bad").memory_limit(0).build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroMemoryLimit);
    let r = Queue::<u8>::builder("bad")
        .memory_limit(0)
        .sizer(|_| 0)
        .build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroMemoryLimit);
}

#[test]
fn zero_ttl_is_an_error() {
    let r = Queue::<u8>::builder("bad").ttl(Duration::ZERO).build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroTtl);
    let r = Queue::<u8>::builder("bad")
        .ttl(Duration::ZERO)
        .sizer(|_| 0)
        .build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroTtl);
}

#[test]
fn zero_sweep_interval_is_an_error() {
    let r = Queue::<u8>::builder("bad")
        .sweep_interval(Some(Duration::ZERO))
        .build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroSweepInterval);
    let r = Queue::<u8>::builder("bad")
        .sweep_interval(Some(Duration::ZERO))
        .sizer(|_| 0)
        .build();
    assert_eq!(r.unwrap_err(), ConfigError::ZeroSweepInterval);
}

#[test]
fn errors_explain_themselves() {
    for e in [
        ConfigError::ZeroMemoryLimit,
        ConfigError::ZeroTtl,
        ConfigError::ZeroSweepInterval,
    ] {
        let text = e.to_string();
        assert!(text.contains("greater than zero"), "{text}");
        let _: &dyn std::error::Error = &e;
    }
}

#[test]
fn smallest_valid_settings_build() {
    let q: Queue<u8> = Queue::builder("tiny")
        .memory_limit(1)
        .ttl(Duration::from_nanos(1))
        .sweep_interval(Some(Duration::from_nanos(1)))
        .build()
        .unwrap();
    // A 1-byte budget holds nothing: every push is refused, none panics.
    assert!(q.push(1).unwrap_err().is_too_large());
    let q: Queue<u8> = Queue::builder("no-sweeper")
        .sweep_interval(None)
        .build()
        .unwrap();
    q.push(1).unwrap();
    assert_eq!(q.len(), 1);
}

#[test]
fn huge_settings_do_not_overflow() {
    let q: Queue<u8> = Queue::builder("huge")
        .memory_limit(usize::MAX)
        .ttl(Duration::MAX)
        .sweep_interval(None)
        .build()
        .unwrap();
    let c = q.subscribe();
    q.push(1).unwrap();
    assert_eq!(q.expire_now(), 0);
    assert_eq!(c.try_recv().unwrap().payload(), &1);
}

/// A NUL byte in the name is a `ConfigError` (the name names a thread, where
/// a NUL cannot go), with either sizer; never a panic.
#[test]
fn a_nul_byte_in_the_name_is_an_error() {
    let r = Queue::<u8>::builder("bad\0name").build();
    assert_eq!(r.unwrap_err(), ConfigError::NulInName);
    let r = Queue::<u8>::builder("\0").sizer(|_| 0).build();
    assert_eq!(r.unwrap_err(), ConfigError::NulInName);
    // Also with no background thread to name.
    let r = Queue::<u8>::builder("a\0b").sweep_interval(None).build();
    assert_eq!(r.unwrap_err(), ConfigError::NulInName);
}

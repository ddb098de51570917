//! `Serialize` and `Deserialize` for [`Event`] (the `serde` feature).
//!
//! [`EventKind`](crate::EventKind), [`Envelope`](crate::Envelope),
//! [`Missed`](crate::Missed) and [`Notice`](crate::Notice) derive both
//! traits (`cfg_attr` on their definitions). `Event` cannot: it stores its
//! queue's name as a raw pointer into a shared `Arc<str>` (see its field
//! docs), so it goes through [`EventRepr`], a plain mirror with the same
//! three public facts:
//!
//! ```json
//! {"kind":"Enqueued","queue":"orders","at":{"secs_since_epoch":1700000000,"nanos_since_epoch":0}}
//! ```
//!
//! `at` uses serde's own `SystemTime` representation (seconds and
//! nanoseconds since the Unix epoch). The shape is part of the crate's
//! stable interface: renaming a field or a variant here, or in the derived
//! types, breaks data written by an older version. Deserializing builds the
//! event with [`Event::new`], so it owns its name and clamps times past
//! what fits (year 2554) as `Event::new` does; serde's `SystemTime` has no
//! way to spell a time before the epoch.
//!
//! The crate documentation's "Cargo features" section shows a whole
//! envelope as JSON.

use crate::item::{Event, EventKind};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::time::SystemTime;

/// The serialized form of an [`Event`]: its kind, its queue's name and its
/// time. Borrows the name when serializing, and when deserializing from
/// input that holds it unescaped.
#[derive(Serialize, Deserialize)]
#[serde(rename = "Event")]
struct EventRepr<'a> {
    /// Enqueue or dequeue.
    kind: EventKind,
    /// The queue's name.
    #[serde(borrow)]
    queue: Cow<'a, str>,
    /// When it happened.
    at: SystemTime,
}

/// Serializes an event as `{ kind, queue, at }` (see the crate docs'
/// "Cargo features" section). Never fails on its own: an event's time is
/// never before the Unix epoch.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use chunkq::{Event, EventKind};
/// use std::time::{Duration, UNIX_EPOCH};
/// let e = Event::new(EventKind::Enqueued, "orders", UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert_eq!(
///     serde_json::to_string(&e).unwrap(),
///     r#"{"kind":"Enqueued","queue":"orders","at":{"secs_since_epoch":1700000000,"nanos_since_epoch":0}}"#,
/// );
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventRepr {
            kind: self.kind(),
            queue: Cow::Borrowed(self.queue()),
            at: self.at(),
        }
        .serialize(serializer)
    }
}

/// Deserializes an event written by its `Serialize` impl, through
/// [`Event::new`]: the event owns its queue's name.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "serde")] {
/// use chunkq::{Event, EventKind};
/// let json = r#"{"kind":"Dequeued","queue":"orders","at":{"secs_since_epoch":1700000000,"nanos_since_epoch":5}}"#;
/// let e: Event = serde_json::from_str(json).unwrap();
/// assert_eq!((e.kind(), e.queue()), (EventKind::Dequeued, "orders"));
/// assert!(serde_json::from_str::<Event>(r#"{"kind":"Lost"}"#).is_err());
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let EventRepr { kind, queue, at } = EventRepr::deserialize(deserializer)?;
        Ok(Event::new(kind, &queue, at))
    }
}

//! The envelope in NATS headers.
//!
//! | header | value |
//! |---|---|
//! | `Nats-Msg-Id` | the publish's id ([`publish_id`]): the item's UUID, the length of its history, its sequence number and the queue it was exported from, `0190…-7…:2:17:orders`. JetStream drops a second publish with the same id within the stream's duplicate window: a retry of this publish, never a copy of the item exported from another queue |
//! | `Chunkq-Id` | the item's UUID, hyphenated (`0190…-7…`) |
//! | `Chunkq-Created` | the creation time in nanoseconds since the Unix epoch, a signed decimal integer (`1764558000123456789`) |
//! | `Chunkq-Seq` | the sequence number in the queue it was exported from, a decimal `u64` |
//! | `Chunkq-History` | the events, oldest first, as a JSON array of `[kind, queue, nanos]` triples, kind `"enq"` or `"deq"`, nanos as in `Chunkq-Created`: `[["enq","orders",1764558000123456789],["deq","orders",1764558000123999000]]` |
//!
//! The history is JSON so that a queue name may hold anything (commas,
//! quotes, brackets, newlines, any Unicode): JSON escapes control
//! characters, and every non-ASCII character is written as a `\uXXXX`
//! escape, so the header value is plain printable ASCII. The exported
//! history ends with the exporter's dequeue.

use crate::codec::{Codec, CodecError};
use async_nats::HeaderMap;
use async_nats::header::HeaderValue;
use chunkq::{Delivery, Envelope, Event, EventKind, Uuid};
use std::error::Error;
use std::fmt::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// JetStream's de-duplication header: the publish's id ([`publish_id`]),
/// not the item's.
pub const MSG_ID: &str = "Nats-Msg-Id";
/// The item's UUID.
pub const ID: &str = "Chunkq-Id";
/// The creation time, in nanoseconds since the Unix epoch.
pub const CREATED: &str = "Chunkq-Created";
/// The sequence number in the exporting queue.
pub const SEQ: &str = "Chunkq-Seq";
/// The history, as JSON.
pub const HISTORY: &str = "Chunkq-History";

/// The headers that carry a delivery's envelope: its UUID, creation time,
/// sequence number, and history including this delivery's dequeue.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// use chunkq_nats::headers;
/// let q: Queue<u8> = Queue::new("a,\"b\"");
/// let c = q.subscribe();
/// let id = q.push(1).unwrap();
/// let h = headers::encode(&c.try_recv().unwrap());
/// assert_eq!(h.get(headers::ID).unwrap().as_str(), id.to_string());
/// // Enqueued and dequeued (two events), sequence 0, from the queue `a,"b"`.
/// assert_eq!(h.get(headers::MSG_ID).unwrap().as_str(), format!("{id}:2:0:a,\"b\""));
/// assert_eq!(h.get(headers::SEQ).unwrap().as_str(), "0");
/// assert!(h.get(headers::HISTORY).unwrap().as_str().starts_with(r#"[["enq","a,\"b\"","#));
/// ```
pub fn encode<T>(delivery: &Delivery<T>) -> HeaderMap {
    let dequeue = delivery.dequeue_event();
    encode_parts(
        delivery.id(),
        delivery.created(),
        delivery.seq(),
        delivery.events().iter().chain(std::iter::once(&dequeue)),
    )
}

/// The headers for an envelope's parts (what [`encode`] writes for a
/// delivery). The publish id names the queue of the last event of
/// `history` (the exporter's dequeue), or `""` for an empty history.
///
/// # Examples
///
/// ```
/// use chunkq::{Event, EventKind, Uuid};
/// use chunkq_nats::headers;
/// use std::time::{Duration, UNIX_EPOCH};
/// let at = UNIX_EPOCH + Duration::from_nanos(5);
/// let ev = Event::new(EventKind::Enqueued, "q", at);
/// let h = headers::encode_parts(Uuid::nil(), at, 3, [&ev]);
/// assert_eq!(h.get(headers::CREATED).unwrap().as_str(), "5");
/// assert_eq!(h.get(headers::HISTORY).unwrap().as_str(), r#"[["enq","q",5]]"#);
/// ```
pub fn encode_parts<'a>(
    id: Uuid,
    created: SystemTime,
    seq: u64,
    history: impl IntoIterator<Item = &'a Event>,
) -> HeaderMap {
    let mut json = String::from("[");
    let mut hops = 0;
    let mut last_queue = "";
    for (i, e) in history.into_iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        hops = i + 1;
        last_queue = e.queue();
        json.push_str("[\"");
        match e.kind() {
            EventKind::Enqueued => json.push_str("enq"),
            EventKind::Dequeued => json.push_str("deq"),
            // A kind a later chunkq adds (`EventKind` is
            // `#[non_exhaustive]`): written by its name, lower case, so
            // that nothing is hidden; an importer that does not know it
            // terminates the message as malformed (counted, never pushed).
            other => json.push_str(&format!("{other:?}").to_lowercase()),
        }
        json.push_str("\",");
        push_ascii_json_string(&mut json, e.queue());
        let _ = write!(json, ",{}]", to_nanos(e.at()));
    }
    json.push(']');
    let mut h = HeaderMap::new();
    // Every value below is ASCII without CR or LF, so `value` never fails.
    h.insert(MSG_ID, value(publish_id(id, hops, seq, last_queue)));
    h.insert(ID, value(id.hyphenated().to_string()));
    h.insert(CREATED, value(to_nanos(created).to_string()));
    h.insert(SEQ, value(seq.to_string()));
    h.insert(HISTORY, value(json));
    h
}

/// The id of one publish of an item: what the exporter sends as
/// `Nats-Msg-Id` and what the importer recognises redeliveries by.
///
/// `{uuid}:{hops}:{seq}:{queue}`: the item's UUID, the length of its
/// history (ending with the exporter's dequeue), its sequence number in the
/// queue it was exported from, and that queue's name with every byte
/// outside printable ASCII, every space and every `%` percent-encoded
/// (`%20`), so the value is a valid header and two names never give the
/// same id. A retry of a publish sends the same id (JetStream stores it
/// once); a copy of the item forwarded into another queue and exported
/// from there (fan-out), or exported again after a round trip, is another
/// publish with another id, and is stored too.
///
/// # Examples
///
/// ```
/// use chunkq::Uuid;
/// use chunkq_nats::headers::publish_id;
/// let id = Uuid::from_u128(1);
/// assert_eq!(publish_id(id, 2, 7, "orders"), "00000000-0000-0000-0000-000000000001:2:7:orders");
/// // The same item forwarded into two queues: two publishes.
/// assert_ne!(publish_id(id, 4, 0, "left"), publish_id(id, 4, 0, "right"));
/// assert!(publish_id(id, 2, 0, "eu west/ü%").ends_with(":eu%20west/%C3%BC%25"));
/// ```
pub fn publish_id(id: Uuid, hops: usize, seq: u64, queue: &str) -> String {
    let mut out = format!("{}:{hops}:{seq}:", id.hyphenated());
    for b in queue.bytes() {
        if b != b'%' && (b'!'..=b'~').contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn value(s: String) -> HeaderValue {
    s.parse().unwrap_or_default()
}

/// Writes `s` as a JSON string literal with every non-ASCII character and
/// every control character escaped.
fn push_ascii_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for u in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{u:04x}");
                }
            }
        }
    }
    out.push('"');
}

/// The envelope fields read back from headers (everything but the payload).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The item's UUID (`Chunkq-Id`).
    pub id: Uuid,
    /// The creation time (`Chunkq-Created`).
    pub created: SystemTime,
    /// The sequence number in the exporting queue (`Chunkq-Seq`).
    pub seq: u64,
    /// The history (`Chunkq-History`).
    pub history: Vec<Event>,
}

impl Meta {
    /// The id of the publish that carried this item ([`publish_id`] of
    /// its UUID, history length, sequence number and the queue of its last
    /// event): the `Nats-Msg-Id` the exporter wrote, recomputed, so that a
    /// message published without one is recognised by the same rule.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::Queue;
    /// use chunkq_nats::headers;
    /// let q: Queue<u8> = Queue::new("orders");
    /// let c = q.subscribe();
    /// q.push(1).unwrap();
    /// let h = headers::encode(&c.try_recv().unwrap());
    /// let meta = headers::decode(Some(&h)).unwrap();
    /// assert_eq!(meta.publish_id(), h.get(headers::MSG_ID).unwrap().as_str());
    /// ```
    pub fn publish_id(&self) -> String {
        let queue = self.history.last().map_or("", Event::queue);
        publish_id(self.id, self.history.len(), self.seq, queue)
    }

    /// The envelope with this metadata and `payload`.
    ///
    /// # Examples
    ///
    /// ```
    /// use chunkq::Uuid;
    /// use chunkq_nats::headers::{self, Meta};
    /// let h = headers::encode_parts(Uuid::max(), std::time::UNIX_EPOCH, 9, []);
    /// let env = headers::decode(Some(&h)).unwrap().with_payload("x");
    /// assert_eq!((env.id, env.seq, env.payload), (Uuid::max(), 9, "x"));
    /// ```
    pub fn with_payload<T>(self, payload: T) -> Envelope<T> {
        Envelope {
            id: self.id,
            created: self.created,
            seq: self.seq,
            history: self.history,
            payload,
        }
    }
}

/// Reads the envelope fields back from a message's headers.
///
/// # Errors
/// [`HeaderError`] when a header is missing or malformed; never panics,
/// whatever the headers hold. The UUID is read from `Chunkq-Id`, or, when
/// that is missing, from a `Nats-Msg-Id` that is a plain UUID (what
/// exporters before `Chunkq-Id` wrote).
///
/// # Examples
///
/// ```
/// use chunkq::{Event, EventKind, Uuid};
/// use chunkq_nats::headers::{self, HeaderError};
/// use std::time::SystemTime;
/// let now = SystemTime::now();
/// let ev = Event::new(EventKind::Dequeued, "ünï,cödé\n", now);
/// let h = headers::encode_parts(Uuid::nil(), now, 1, [&ev]);
/// let meta = headers::decode(Some(&h)).unwrap();
/// assert_eq!(meta.created, now);
/// assert_eq!(meta.history, [ev]);
///
/// let mut bad = h.clone();
/// bad.insert(headers::HISTORY, "[[\"enq\"]]");
/// assert!(matches!(headers::decode(Some(&bad)), Err(HeaderError::Invalid { .. })));
/// assert_eq!(headers::decode(None), Err(HeaderError::Missing(headers::ID)));
/// ```
pub fn decode(headers: Option<&HeaderMap>) -> Result<Meta, HeaderError> {
    let get = |name: &'static str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().trim())
            .ok_or(HeaderError::Missing(name))
    };
    let invalid = |header: &'static str, reason: String| HeaderError::Invalid { header, reason };
    let id = match get(ID) {
        Ok(v) => Uuid::parse_str(v).map_err(|e| invalid(ID, e.to_string()))?,
        Err(missing) => match get(MSG_ID).map(Uuid::parse_str) {
            Ok(Ok(id)) => id,
            _ => return Err(missing),
        },
    };
    let created = parse_time(get(CREATED)?).map_err(|r| invalid(CREATED, r))?;
    let seq = get(SEQ)?
        .parse::<u64>()
        .map_err(|e| invalid(SEQ, e.to_string()))?;
    let raw: Vec<(String, String, i128)> =
        serde_json::from_str(get(HISTORY)?).map_err(|e| invalid(HISTORY, e.to_string()))?;
    let mut history = Vec::with_capacity(raw.len());
    for (kind, queue, nanos) in raw {
        let kind = match kind.as_str() {
            "enq" => EventKind::Enqueued,
            "deq" => EventKind::Dequeued,
            other => return Err(invalid(HISTORY, format!("unknown event kind {other:?}"))),
        };
        let at = from_nanos(nanos)
            .ok_or_else(|| invalid(HISTORY, format!("time {nanos} out of range")))?;
        history.push(Event::new(kind, &queue, at));
    }
    Ok(Meta {
        id,
        created,
        seq,
        history,
    })
}

/// Rebuilds the whole envelope of a message: [`decode`] for the headers,
/// the codec for the body.
///
/// # Errors
/// [`DecodeError`] saying which part was malformed.
///
/// # Examples
///
/// ```
/// use chunkq::Queue;
/// use chunkq_nats::{headers, Codec, Json};
/// let q: Queue<String> = Queue::new("a");
/// let c = q.subscribe();
/// q.push("hi".into()).unwrap();
/// let d = c.try_recv().unwrap();
/// let (h, body) = (headers::encode(&d), Json.encode(d.payload()).unwrap());
/// let env = headers::envelope::<String, _>(Some(&h), &body, &Json).unwrap();
/// assert_eq!(env, d.to_envelope());
/// assert!(headers::envelope::<String, _>(Some(&h), b"nope", &Json).is_err());
/// ```
pub fn envelope<T, C: Codec<T> + ?Sized>(
    headers: Option<&HeaderMap>,
    body: &[u8],
    codec: &C,
) -> Result<Envelope<T>, DecodeError> {
    let meta = decode(headers).map_err(DecodeError::Header)?;
    let payload = codec.decode(body).map_err(DecodeError::Payload)?;
    Ok(meta.with_payload(payload))
}

/// Nanoseconds since the Unix epoch (negative before it).
pub(crate) fn to_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// The time `nanos` after the Unix epoch, if the platform can hold it.
pub(crate) fn from_nanos(nanos: i128) -> Option<SystemTime> {
    let abs = nanos.unsigned_abs();
    let secs = u64::try_from(abs / 1_000_000_000).ok()?;
    let d = Duration::new(secs, (abs % 1_000_000_000) as u32);
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(d)
    } else {
        UNIX_EPOCH.checked_sub(d)
    }
}

fn parse_time(s: &str) -> Result<SystemTime, String> {
    let n: i128 = s
        .parse()
        .map_err(|e: std::num::ParseIntError| e.to_string())?;
    from_nanos(n).ok_or_else(|| format!("time {n} out of range"))
}

/// A chunkq header that is missing or malformed.
///
/// # Examples
///
/// ```
/// use chunkq_nats::headers::{self, HeaderError};
/// let e = headers::decode(None).unwrap_err();
/// assert_eq!(e.to_string(), "missing header Chunkq-Id");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The message lacks this header.
    Missing(&'static str),
    /// This header's value cannot be read.
    Invalid {
        /// Which header.
        header: &'static str,
        /// What is wrong with it.
        reason: String,
    },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Missing(h) => write!(f, "missing header {h}"),
            HeaderError::Invalid { header, reason } => {
                write!(f, "invalid header {header}: {reason}")
            }
        }
    }
}

impl Error for HeaderError {}

/// A message that cannot be turned back into an envelope.
///
/// # Examples
///
/// ```
/// use chunkq_nats::headers::{self, DecodeError};
/// use chunkq_nats::Json;
/// let e = headers::envelope::<u8, _>(None, b"1", &Json).unwrap_err();
/// assert!(matches!(e, DecodeError::Header(_)));
/// ```
#[derive(Debug)]
pub enum DecodeError {
    /// The envelope headers are missing or malformed.
    Header(HeaderError),
    /// The codec rejected the body.
    Payload(CodecError),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Header(e) => e.fmt(f),
            DecodeError::Payload(e) => e.fmt(f),
        }
    }
}

impl Error for DecodeError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            DecodeError::Header(e) => Some(e),
            DecodeError::Payload(e) => Some(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_including_before_the_epoch() {
        for n in [0i128, 1, -1, 1_764_558_000_123_456_789, -999_999_999_999] {
            assert_eq!(to_nanos(from_nanos(n).unwrap()), n);
        }
        assert_eq!(from_nanos(i128::MAX), None);
        assert_eq!(from_nanos(i128::MIN), None);
    }

    #[test]
    fn odd_queue_names_survive() {
        let t = UNIX_EPOCH + Duration::from_secs(1);
        let names = [
            "",
            "a,b",
            "\"]",
            "\\",
            "tab\tnl\r\n",
            "日本🦀",
            "\u{7f}\u{0}",
        ];
        let evs: Vec<Event> = names
            .iter()
            .map(|n| Event::new(EventKind::Enqueued, n, t))
            .collect();
        let h = encode_parts(Uuid::nil(), t, 0, &evs);
        let v = h.get(HISTORY).unwrap().as_str();
        assert!(v.bytes().all(|b| (b' '..=b'~').contains(&b)), "{v}");
        assert_eq!(decode(Some(&h)).unwrap().history, evs);
    }

    #[test]
    fn malformed_headers_are_errors() {
        let good = encode_parts(Uuid::nil(), UNIX_EPOCH, 0, []);
        let cases: [(&'static str, &str); 8] = [
            (ID, "not-a-uuid"),
            (CREATED, "12x"),
            (CREATED, "999999999999999999999999999999999999999"),
            (SEQ, "-1"),
            (HISTORY, "{}"),
            (HISTORY, "[[\"zap\",\"q\",0]]"),
            (HISTORY, "[[\"enq\",\"q\",1e400]]"),
            (
                HISTORY,
                "[[\"enq\",\"q\",170141183460469231731687303715884105727]]",
            ),
        ];
        for (name, bad) in cases {
            let mut h = good.clone();
            h.insert(name, bad);
            match decode(Some(&h)) {
                Err(HeaderError::Invalid { header, .. }) => assert_eq!(header, name, "{bad}"),
                other => panic!("{name}={bad}: {other:?}"),
            }
        }
        for name in [ID, CREATED, SEQ, HISTORY] {
            let mut h = HeaderMap::new();
            for (k, v) in good.iter() {
                if AsRef::<str>::as_ref(k) != name {
                    for v in v {
                        h.append(k.clone(), v.clone());
                    }
                }
            }
            // Without Chunkq-Id, the Nats-Msg-Id (a publish id, not a
            // UUID) does not stand in for it.
            assert_eq!(decode(Some(&h)), Err(HeaderError::Missing(name)));
        }
    }

    #[test]
    fn a_plain_uuid_msg_id_stands_in_for_a_missing_chunkq_id() {
        let id = Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0042);
        let mut h = HeaderMap::new();
        for (k, v) in encode_parts(id, UNIX_EPOCH, 3, []).iter() {
            if AsRef::<str>::as_ref(k) != ID {
                for v in v {
                    h.append(k.clone(), v.clone());
                }
            }
        }
        h.insert(MSG_ID, id.to_string().as_str());
        assert_eq!(decode(Some(&h)).unwrap().id, id);
    }

    #[test]
    fn publish_ids_tell_publishes_apart_and_names_apart() {
        let id = Uuid::from_u128(7);
        let t = UNIX_EPOCH;
        let ev = |k, q| Event::new(k, q, t);
        let (enq, deq) = (EventKind::Enqueued, EventKind::Dequeued);
        // One item forwarded from `src` into `left` and `right`, both at
        // sequence 0 there, both exported.
        let left = [
            ev(enq, "src"),
            ev(deq, "src"),
            ev(enq, "left"),
            ev(deq, "left"),
        ];
        let right = [
            ev(enq, "src"),
            ev(deq, "src"),
            ev(enq, "right"),
            ev(deq, "right"),
        ];
        let msg_id = |h: &HeaderMap| h.get(MSG_ID).unwrap().as_str().to_string();
        let (l, r) = (
            encode_parts(id, t, 0, &left),
            encode_parts(id, t, 0, &right),
        );
        assert_ne!(msg_id(&l), msg_id(&r));
        // A retry: the same headers, the same id.
        assert_eq!(msg_id(&l), msg_id(&encode_parts(id, t, 0, &left)));
        // The item exported from a queue of the same name after a round
        // trip (a longer history) is another publish.
        let again = [
            ev(enq, "src"),
            ev(deq, "src"),
            ev(enq, "src"),
            ev(deq, "src"),
        ];
        assert_ne!(
            msg_id(&encode_parts(id, t, 0, &left[..2])),
            msg_id(&encode_parts(id, t, 0, &again))
        );
        // Names that differ only in escaped bytes stay apart, and every
        // id is a printable header value.
        let names = ["a b", "a%20b", "a\tb", "a\u{0}b", "ü", "%C3%BC"];
        let ids: std::collections::HashSet<String> =
            names.iter().map(|n| publish_id(id, 1, 0, n)).collect();
        assert_eq!(ids.len(), names.len());
        for i in &ids {
            assert!(i.bytes().all(|b| (b'!'..=b'~').contains(&b)), "{i}");
        }
        // decode recomputes what encode wrote.
        assert_eq!(decode(Some(&l)).unwrap().publish_id(), msg_id(&l));
    }
}

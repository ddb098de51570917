//! How a payload becomes a message body and back.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::error::Error;
use std::fmt;

/// Turns a payload into a message body and a body back into a payload.
///
/// Only the payload goes through the codec; the envelope (UUID, creation
/// time, sequence number, history) travels in headers (see
/// [`crate::headers`]). [`Json`] (serde) is the default; [`Raw`] passes
/// `Vec<u8>` and [`Bytes`] payloads through unchanged.
///
/// # Examples
///
/// A codec for `String` payloads sent as plain UTF-8:
///
/// ```
/// use bytes::Bytes;
/// use chunkq_nats::{Codec, CodecError};
///
/// struct Utf8;
/// impl Codec<String> for Utf8 {
///     fn encode(&self, payload: &String) -> Result<Bytes, CodecError> {
///         Ok(Bytes::copy_from_slice(payload.as_bytes()))
///     }
///     fn decode(&self, body: &[u8]) -> Result<String, CodecError> {
///         String::from_utf8(body.to_vec()).map_err(CodecError::new)
///     }
/// }
/// let body = Utf8.encode(&"héllo".to_string()).unwrap();
/// assert_eq!(Utf8.decode(&body).unwrap(), "héllo");
/// assert!(Utf8.decode(&[0xff]).is_err());
/// ```
pub trait Codec<T>: Send + Sync {
    /// The message body for `payload`.
    ///
    /// # Errors
    /// When the payload cannot be represented (the exporter then hands the
    /// delivery back in [`crate::ExportError::Encode`]).
    fn encode(&self, payload: &T) -> Result<Bytes, CodecError>;

    /// The payload a body stands for.
    ///
    /// # Errors
    /// When the body is not a valid encoding (the importer counts the
    /// message as malformed; see [`crate::ImportStats::malformed`]).
    fn decode(&self, body: &[u8]) -> Result<T, CodecError>;
}

/// JSON through serde: the default codec.
///
/// # Examples
///
/// ```
/// use chunkq_nats::{Codec, Json};
/// let body = Json.encode(&vec![1u32, 2]).unwrap();
/// assert_eq!(&body[..], b"[1,2]");
/// let back: Vec<u32> = Json.decode(&body).unwrap();
/// assert_eq!(back, [1, 2]);
/// assert!(Codec::<Vec<u32>>::decode(&Json, b"{").is_err());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Json;

impl<T: Serialize + DeserializeOwned> Codec<T> for Json {
    fn encode(&self, payload: &T) -> Result<Bytes, CodecError> {
        serde_json::to_vec(payload)
            .map(Bytes::from)
            .map_err(CodecError::new)
    }

    fn decode(&self, body: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(body).map_err(CodecError::new)
    }
}

/// Raw bytes: the body is the payload, for `Vec<u8>` and [`Bytes`]
/// payloads. Never fails.
///
/// # Examples
///
/// ```
/// use bytes::Bytes;
/// use chunkq_nats::{Codec, Raw};
/// let body = Raw.encode(&vec![0u8, 255]).unwrap();
/// assert_eq!(&body[..], &[0, 255]);
/// let back: Bytes = Raw.decode(&body).unwrap();
/// assert_eq!(&back[..], &[0, 255]);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct Raw;

impl Codec<Vec<u8>> for Raw {
    fn encode(&self, payload: &Vec<u8>) -> Result<Bytes, CodecError> {
        Ok(Bytes::copy_from_slice(payload))
    }

    fn decode(&self, body: &[u8]) -> Result<Vec<u8>, CodecError> {
        Ok(body.to_vec())
    }
}

impl Codec<Bytes> for Raw {
    fn encode(&self, payload: &Bytes) -> Result<Bytes, CodecError> {
        Ok(payload.clone())
    }

    fn decode(&self, body: &[u8]) -> Result<Bytes, CodecError> {
        Ok(Bytes::copy_from_slice(body))
    }
}

/// A payload that could not be encoded or a body that could not be
/// decoded, with the codec's own error as its source.
///
/// # Examples
///
/// ```
/// use chunkq_nats::CodecError;
/// use std::error::Error;
/// let e = CodecError::new(std::fmt::Error);
/// assert!(e.source().is_some());
/// assert!(e.to_string().starts_with("codec error"));
/// ```
#[derive(Debug)]
pub struct CodecError(Box<dyn Error + Send + Sync>);

impl CodecError {
    /// Wraps a codec's error.
    ///
    /// # Examples
    ///
    /// ```
    /// let e = chunkq_nats::CodecError::new("not a number".parse::<u8>().unwrap_err());
    /// assert!(e.to_string().contains("invalid digit"));
    /// ```
    pub fn new(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self(source.into())
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "codec error: {}", self.0)
    }
}

impl Error for CodecError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.0)
    }
}

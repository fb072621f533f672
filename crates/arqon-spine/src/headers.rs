//! Message headers carried beside the payload (NATS headers): trace context and other small metadata.

use std::collections::BTreeMap;
use std::sync::Arc;

/// W3C trace context header; the Shield sets it, the receiving node continues the trace.
pub const TRACEPARENT: &str = "traceparent";
/// W3C trace state header.
pub const TRACESTATE: &str = "tracestate";

/// Longest header name, in bytes.
pub const MAX_HEADER_NAME_LEN: usize = 64;
/// Longest header value, in bytes.
pub const MAX_HEADER_VALUE_LEN: usize = 1024;

/// Why a header was refused by [`Headers::insert`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The name is empty, too long, or holds a character other than visible ASCII without `:`.
    #[error(
        "header name is empty, longer than {MAX_HEADER_NAME_LEN} bytes, or not visible ASCII without ':'"
    )]
    InvalidName,
    /// The value is too long or holds a character other than visible ASCII or space (CR and LF included).
    #[error("header value is longer than {MAX_HEADER_VALUE_LEN} bytes or not visible ASCII")]
    InvalidValue,
}

/// Single-valued message headers, ordered by name. Values are never logged.
///
/// Shared: the embedded Spine copies a message (headers included) into every subscription's
/// queue, and a copy is a reference-count increment; an insert copies the map only when shared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Arc<BTreeMap<String, String>>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`, replacing an earlier value; refuses anything NATS could misparse.
    pub fn insert(&mut self, name: &str, value: &str) -> Result<(), HeaderError> {
        let name_ok = !name.is_empty()
            && name.len() <= MAX_HEADER_NAME_LEN
            && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
        if !name_ok {
            return Err(HeaderError::InvalidName);
        }
        let value_ok = value.len() <= MAX_HEADER_VALUE_LEN
            && value.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if !value_ok {
            return Err(HeaderError::InvalidValue);
        }
        Arc::make_mut(&mut self.0).insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    /// Builder form of [`Headers::insert`].
    pub fn with(mut self, name: &str, value: &str) -> Result<Self, HeaderError> {
        self.insert(name, value)?;
        Ok(self)
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The headers in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// How many headers are set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no header is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-SPINE-9
    #[test]
    fn ac_spine_9_refuses_what_nats_could_misparse() {
        let mut h = Headers::new();
        for bad in ["", "a:b", "a b", "a\r\nb", "é", &"n".repeat(65)] {
            assert_eq!(h.insert(bad, "v"), Err(HeaderError::InvalidName), "{bad:?}");
        }
        for bad in [
            "a\r\nInjected: x",
            "a\nb",
            "a\rb",
            "\u{0}",
            "é",
            &"v".repeat(1025),
        ] {
            assert_eq!(
                h.insert("n", bad),
                Err(HeaderError::InvalidValue),
                "{bad:?}"
            );
        }
        assert!(h.is_empty());
    }

    #[test]
    fn insert_replaces_and_iterates_in_name_order() {
        let h = Headers::new()
            .with(
                TRACEPARENT,
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            )
            .and_then(|h| h.with("a", "1"))
            .and_then(|h| h.with("a", "2 two"))
            .unwrap();
        assert_eq!(h.len(), 2);
        assert_eq!(h.get("a"), Some("2 two"));
        let names: Vec<&str> = h.iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["a", TRACEPARENT]);
    }
}

//! Hand-written `Debug` for the generated types that carry tokens or payloads: they never print them.

use std::fmt;

use crate::v1::{Message, Publish, Refresh};

impl fmt::Debug for Refresh {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refresh")
            .field("token", &"<redacted>")
            .finish()
    }
}

impl fmt::Debug for Publish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publish")
            .field("room", &self.room)
            .field("payload_len", &self.payload.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Message")
            .field("room", &self.room)
            .field("payload_len", &self.payload.len())
            .field("content_type", &self.content_type)
            .field("offset", &self.offset)
            .field("epoch", &self.epoch)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use crate::v1::{Message, Publish, Refresh};

    #[test]
    fn debug_never_prints_tokens_or_payloads() {
        let refresh = Refresh {
            token: "eyJhbGciOi.secret.sig".into(),
        };
        assert!(!format!("{refresh:?}").contains("secret"));
        let publish = Publish {
            room: "r".into(),
            payload: bytes::Bytes::from_static(b"top-secret"),
            content_type: "text/plain".into(),
        };
        assert!(!format!("{publish:?}").contains("top-secret"));
        let message = Message {
            room: "r".into(),
            payload: bytes::Bytes::from_static(b"top-secret"),
            content_type: "text/plain".into(),
            ..Message::default()
        };
        assert!(!format!("{message:?}").contains("top-secret"));
    }
}

//! Why an inbound frame was refused: one typed error per failure, each mapped to an [`ErrorCode`].

use crate::names::NameError;
use crate::v1::ErrorCode;

/// A frame refused at the trust boundary. `Display` never includes tokens or payloads.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// A WebSocket text frame; the protocol is binary only.
    #[error("text frames are not accepted; send binary protobuf envelopes")]
    TextFrame,
    /// The frame is longer than the limit; it was not decoded.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The frame's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A binary frame with no bytes.
    #[error("empty frame")]
    EmptyFrame,
    /// A binary frame holding JSON instead of a protobuf envelope.
    #[error("frame is JSON; send binary protobuf envelopes")]
    Json,
    /// The frame ends inside a field.
    #[error("frame is truncated")]
    Truncated,
    /// The frame is not a protobuf envelope.
    #[error("frame is not a valid envelope: {reason}")]
    Malformed {
        /// What the decoder saw.
        reason: String,
    },
    /// The envelope speaks another MAJOR of the protocol.
    #[error("protocol version {got} is not supported (this server speaks {supported})")]
    UnsupportedVersion {
        /// The version in the header.
        got: u32,
        /// The version this server speaks.
        supported: u32,
    },
    /// A required field is absent or empty.
    #[error("missing required field {field}")]
    MissingField {
        /// The field's path, e.g. `header.protocol_version` or `publish.room`.
        field: &'static str,
    },
    /// A field holds a value outside its range or format.
    #[error("invalid field {field}: {reason}")]
    InvalidField {
        /// The field's path.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A room name outside the grammar.
    #[error("invalid room name: {0}")]
    InvalidRoom(#[source] NameError),
    /// A publish payload longer than the limit.
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// The payload's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A body only the server may send.
    #[error("clients may not send {body}")]
    ServerOnlyBody {
        /// The body's name.
        body: &'static str,
    },
}

impl ProtocolError {
    /// The error code sent to the client in an `Error` body.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::TextFrame => ErrorCode::TextFrame,
            Self::FrameTooLarge { .. } => ErrorCode::FrameTooLarge,
            Self::UnsupportedVersion { .. } => ErrorCode::UnsupportedVersion,
            Self::InvalidRoom(_) => ErrorCode::InvalidRoom,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::EmptyFrame
            | Self::Json
            | Self::Truncated
            | Self::Malformed { .. }
            | Self::MissingField { .. }
            | Self::InvalidField { .. }
            | Self::ServerOnlyBody { .. } => ErrorCode::ProtocolError,
        }
    }

    /// A stable snake-case name for metrics labels (`arqonbus.shield.protocol_errors{kind=…}`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::TextFrame => "text_frame",
            Self::FrameTooLarge { .. } => "frame_too_large",
            Self::EmptyFrame => "empty_frame",
            Self::Json => "json",
            Self::Truncated => "truncated",
            Self::Malformed { .. } => "malformed",
            Self::UnsupportedVersion { .. } => "unsupported_version",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidField { .. } => "invalid_field",
            Self::InvalidRoom(_) => "invalid_room",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::ServerOnlyBody { .. } => "server_only_body",
        }
    }
}

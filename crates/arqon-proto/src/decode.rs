//! The trust boundary: an untrusted WebSocket frame becomes a typed command or a typed error.
//!
//! Order of checks (see `specs/protocol.md`): text frames are refused unread; the length is
//! checked before anything is decoded; a walk over the top-level fields tells truncated frames
//! from garbage; prost decodes; the version, the required fields, the room grammar and the
//! limits are checked. The server-stamped header fields are dropped here, so nothing downstream
//! can read a client's claim about its tenant, user, session or timestamp.

use std::collections::BTreeMap;
use std::fmt;

use bytes::Bytes;
use prost::Message as _;

use crate::contract::PROTOCOL_VERSION;
use crate::error::ProtocolError;
use crate::names::RoomName;
use crate::v1::{
    Alert, AlertSeverity, Approval, CatalogUpdate, Enforce, Envelope, Header, Proposal, Rejection,
    RolloutConfig, Telemetry, enforce, envelope::Body,
};
use crate::wire;

/// Default longest frame, in bytes.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default longest publish payload, in bytes.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 60 * 1024;
/// Longest `message_id`, `correlation_id`, `twist_id`, `acked_message_id` or proposal id, in bytes.
pub const MAX_ID_BYTES: usize = 128;
/// Longest `tracestate`, in bytes; a longer one is dropped.
pub const MAX_TRACESTATE_BYTES: usize = 512;
/// Most entries in a `Join.metadata` map.
pub const MAX_METADATA_ENTRIES: usize = 16;
/// Longest `Join.metadata` key, in bytes.
pub const MAX_METADATA_KEY_BYTES: usize = 64;
/// Longest `Join.metadata` value, in bytes.
pub const MAX_METADATA_VALUE_BYTES: usize = 256;
/// Longest `content_type`, in bytes.
pub const MAX_CONTENT_TYPE_BYTES: usize = 128;
/// Longest token, in bytes: a `Refresh.token` here, and any token `arqon-auth` verifies.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Longest `PresenceRequest.page_token`, in bytes.
pub const MAX_PAGE_TOKEN_BYTES: usize = 256;

/// The size limits applied at decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameLimits {
    /// Longest frame accepted, in bytes; checked before decoding.
    pub max_frame_bytes: usize,
    /// Longest publish payload accepted, in bytes.
    pub max_payload_bytes: usize,
}

impl Default for FrameLimits {
    fn default() -> Self {
        Self {
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
        }
    }
}

/// A WebSocket data frame as the Shield received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A binary frame: one encoded `Envelope`.
    Binary(Bytes),
    /// A text frame. Its content is never read.
    Text,
}

/// A token that must never be logged: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken(String);

impl SecretToken {
    /// Wraps a token.
    pub fn new(token: String) -> Self {
        Self(token)
    }

    /// The token, for verification only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretToken(<redacted>)")
    }
}

/// W3C trace context, present only when `traceparent` is well formed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `traceparent`.
    pub traceparent: String,
    /// `tracestate`; empty when absent or too long.
    pub tracestate: String,
}

/// The header fields a client may set. The server-stamped ones are not here: they were dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHeader {
    /// `message_id`, when the client set one.
    pub message_id: Option<String>,
    /// `correlation_id`, when the client set one; replies echo it.
    pub correlation_id: Option<String>,
    /// `twist_id` (X-Twist-ID), when the client set one; the server fills it otherwise.
    pub twist_id: Option<String>,
    /// Trace context, when the client sent a valid one.
    pub trace: Option<TraceContext>,
}

/// A governance body, checked for required fields and ranges.
#[derive(Clone, Debug, PartialEq)]
pub enum GovernanceCommand {
    /// Upstream metrics digest.
    Telemetry(Telemetry),
    /// Upstream proposal.
    Proposal(Proposal),
    /// Upstream alert.
    Alert(Alert),
    /// Downstream approval.
    Approval(Approval),
    /// Downstream rejection.
    Rejection(Rejection),
    /// Downstream enforcement; `action` is guaranteed present.
    Enforce(Enforce),
    /// Downstream catalog update.
    CatalogUpdate(CatalogUpdate),
}

impl GovernanceCommand {
    /// Whether the body flows from the data plane to the control plane (Telemetry, Proposal, Alert).
    pub fn is_upstream(&self) -> bool {
        matches!(
            self,
            Self::Telemetry(_) | Self::Proposal(_) | Self::Alert(_)
        )
    }

    /// The body back as an envelope body, e.g. to route it unchanged.
    pub fn into_body(self) -> Body {
        match self {
            Self::Telemetry(m) => Body::Telemetry(m),
            Self::Proposal(m) => Body::Proposal(m),
            Self::Alert(m) => Body::Alert(m),
            Self::Approval(m) => Body::Approval(m),
            Self::Rejection(m) => Body::Rejection(m),
            Self::Enforce(m) => Body::Enforce(m),
            Self::CatalogUpdate(m) => Body::CatalogUpdate(m),
        }
    }

    /// The governance body of an envelope body the server sent (unvalidated), if it is one.
    pub fn from_body(body: Body) -> Option<Self> {
        Some(match body {
            Body::Telemetry(m) => Self::Telemetry(m),
            Body::Proposal(m) => Self::Proposal(m),
            Body::Alert(m) => Self::Alert(m),
            Body::Approval(m) => Self::Approval(m),
            Body::Rejection(m) => Self::Rejection(m),
            Body::Enforce(m) => Self::Enforce(m),
            Body::CatalogUpdate(m) => Self::CatalogUpdate(m),
            _ => return None,
        })
    }
}

/// Longest `Position.epoch`, in bytes.
pub const MAX_EPOCH_BYTES: usize = 64;

/// Most messages one `HistoryRequest` may ask for with `last`.
pub const MAX_HISTORY_LAST: u32 = 1000;

/// A client's place in a room's history (`arqon.v1.Position`), past validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    /// Offset of the last message seen.
    pub offset: u64,
    /// The history's epoch; empty when the client has none yet.
    pub epoch: String,
}

impl Position {
    fn from_wire(field: &'static str, wire: crate::v1::Position) -> Result<Self, ProtocolError> {
        bounded(field, &wire.epoch, MAX_EPOCH_BYTES)?;
        Ok(Self {
            offset: wire.offset,
            epoch: wire.epoch,
        })
    }
}

/// What a `HistoryRequest` asks for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HistoryQuery {
    /// The newest `n` messages (1..=`MAX_HISTORY_LAST`).
    Last(u32),
    /// The messages after a position.
    Since(Position),
}

/// What a client asked for, after validation.
#[derive(Clone, PartialEq)]
pub enum ClientCommand {
    /// Join a room.
    Join {
        /// The room, past the grammar.
        room: RoomName,
        /// Presence metadata, within the limits.
        metadata: BTreeMap<String, String>,
        /// Where to recover from; `None` for a plain join.
        since: Option<Position>,
    },
    /// Read a room's history.
    History {
        /// The room.
        room: RoomName,
        /// What to read.
        query: HistoryQuery,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: RoomName,
    },
    /// Publish to a room.
    Publish {
        /// The room.
        room: RoomName,
        /// The payload, within `max_payload_bytes`; a slice of the frame, not a copy.
        payload: Bytes,
        /// Its MIME type; may be empty.
        content_type: String,
    },
    /// Liveness signal.
    Heartbeat,
    /// Application ping; answer with a `Pong` carrying `nonce`.
    Ping {
        /// Echo this.
        nonce: u64,
    },
    /// Answer to a server ping.
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
    /// A fresh token for the open socket.
    Refresh {
        /// The token; verify it, never log it.
        token: SecretToken,
    },
    /// A page of a room's members.
    PresenceRequest {
        /// The room.
        room: RoomName,
        /// Requested page size; 0 means the server default.
        page_size: u32,
        /// Continuation token; `None` for the first page.
        page_token: Option<String>,
    },
    /// Acknowledges a server message.
    Ack {
        /// The acknowledged message id.
        message_id: String,
    },
    /// A governance body (seed 004).
    Governance(GovernanceCommand),
}

impl ClientCommand {
    /// A stable snake-case name, for metrics labels and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Join { .. } => "join",
            Self::History { .. } => "history_request",
            Self::Leave { .. } => "leave",
            Self::Publish { .. } => "publish",
            Self::Heartbeat => "heartbeat",
            Self::Ping { .. } => "ping",
            Self::Pong { .. } => "pong",
            Self::Refresh { .. } => "refresh",
            Self::PresenceRequest { .. } => "presence_request",
            Self::Ack { .. } => "ack",
            Self::Governance(GovernanceCommand::Telemetry(_)) => "telemetry",
            Self::Governance(GovernanceCommand::Proposal(_)) => "proposal",
            Self::Governance(GovernanceCommand::Alert(_)) => "alert",
            Self::Governance(GovernanceCommand::Approval(_)) => "approval",
            Self::Governance(GovernanceCommand::Rejection(_)) => "rejection",
            Self::Governance(GovernanceCommand::Enforce(_)) => "enforce",
            Self::Governance(GovernanceCommand::CatalogUpdate(_)) => "catalog_update",
        }
    }
}

impl fmt::Debug for ClientCommand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Join {
                room,
                metadata,
                since,
            } => f
                .debug_struct("Join")
                .field("room", room)
                .field("metadata", metadata)
                .field("since", since)
                .finish(),
            Self::History { room, query } => f
                .debug_struct("History")
                .field("room", room)
                .field("query", query)
                .finish(),
            Self::Leave { room } => f.debug_struct("Leave").field("room", room).finish(),
            Self::Publish {
                room,
                payload,
                content_type,
            } => f
                .debug_struct("Publish")
                .field("room", room)
                .field("payload_len", &payload.len())
                .field("content_type", content_type)
                .finish(),
            Self::Heartbeat => f.write_str("Heartbeat"),
            Self::Ping { nonce } => f.debug_struct("Ping").field("nonce", nonce).finish(),
            Self::Pong { nonce } => f.debug_struct("Pong").field("nonce", nonce).finish(),
            Self::Refresh { token } => f.debug_struct("Refresh").field("token", token).finish(),
            Self::PresenceRequest {
                room,
                page_size,
                page_token,
            } => f
                .debug_struct("PresenceRequest")
                .field("room", room)
                .field("page_size", page_size)
                .field("page_token", page_token)
                .finish(),
            Self::Ack { message_id } => f
                .debug_struct("Ack")
                .field("message_id", message_id)
                .finish(),
            Self::Governance(command) => f.debug_tuple("Governance").field(command).finish(),
        }
    }
}

/// A validated client envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientEnvelope {
    /// The client-settable header fields.
    pub header: ClientHeader,
    /// What the client asked for.
    pub command: ClientCommand,
}

/// The `oneof body` field name of a body, e.g. `publish` or `presence_update`.
pub fn body_name(body: &Body) -> &'static str {
    match body {
        Body::Join(_) => "join",
        Body::HistoryRequest(_) => "history_request",
        Body::Recovery(_) => "recovery",
        Body::HistoryPage(_) => "history_page",
        Body::Batch(_) => "batch",
        Body::Leave(_) => "leave",
        Body::Publish(_) => "publish",
        Body::Heartbeat(_) => "heartbeat",
        Body::Ping(_) => "ping",
        Body::Pong(_) => "pong",
        Body::Refresh(_) => "refresh",
        Body::PresenceRequest(_) => "presence_request",
        Body::Ack(_) => "ack",
        Body::Welcome(_) => "welcome",
        Body::Message(_) => "message",
        Body::PresenceUpdate(_) => "presence_update",
        Body::PresenceLeave(_) => "presence_leave",
        Body::Drain(_) => "drain",
        Body::Error(_) => "error",
        Body::Telemetry(_) => "telemetry",
        Body::Proposal(_) => "proposal",
        Body::Alert(_) => "alert",
        Body::Approval(_) => "approval",
        Body::Rejection(_) => "rejection",
        Body::Enforce(_) => "enforce",
        Body::CatalogUpdate(_) => "catalog_update",
    }
}

/// Decodes and validates one frame from a client.
pub fn decode_client_frame(
    frame: Frame,
    limits: &FrameLimits,
) -> Result<ClientEnvelope, ProtocolError> {
    let bytes = match frame {
        Frame::Text => return Err(ProtocolError::TextFrame),
        Frame::Binary(bytes) => bytes,
    };
    let envelope = decode_envelope(bytes, limits.max_frame_bytes)?;
    let (Some(header), Some(body)) = (envelope.header, envelope.body) else {
        return Err(ProtocolError::MissingField { field: "body" });
    };
    Ok(ClientEnvelope {
        header: client_header(header)?,
        command: client_command(body, limits)?,
    })
}

/// Decodes one envelope from either side and checks the frame length, the wire format, the
/// protocol version and that the header and a body are present. It does not check the body;
/// clients use it for server frames, the Shield goes through [`decode_client_frame`].
#[allow(
    clippy::needless_pass_by_value,
    reason = "the frame is handed over; decoding slices it without copying payloads"
)]
pub fn decode_envelope(frame: Bytes, max_frame_bytes: usize) -> Result<Envelope, ProtocolError> {
    if frame.is_empty() {
        return Err(ProtocolError::EmptyFrame);
    }
    if frame.len() > max_frame_bytes {
        return Err(ProtocolError::FrameTooLarge {
            len: frame.len(),
            max: max_frame_bytes,
        });
    }
    let decoded = wire::scan_fields(&frame).and_then(|()| {
        Envelope::decode(frame.clone()).map_err(|error| ProtocolError::Malformed {
            reason: error.to_string(),
        })
    });
    let envelope = match decoded {
        Ok(envelope) if envelope.header.is_some() => envelope,
        Ok(_) => {
            return Err(json_or(
                &frame,
                ProtocolError::MissingField { field: "header" },
            ));
        }
        Err(error) => return Err(json_or(&frame, error)),
    };
    match envelope.header.as_ref().map_or(0, |h| h.protocol_version) {
        0 => {
            return Err(ProtocolError::MissingField {
                field: "header.protocol_version",
            });
        }
        PROTOCOL_VERSION => {}
        got => {
            return Err(ProtocolError::UnsupportedVersion {
                got,
                supported: PROTOCOL_VERSION,
            });
        }
    }
    if envelope.body.is_none() {
        return Err(ProtocolError::MissingField { field: "body" });
    }
    Ok(envelope)
}

/// `Json` when the frame is a JSON object or array, else `error`.
fn json_or(frame: &[u8], error: ProtocolError) -> ProtocolError {
    let first = frame.iter().find(|b| !b.is_ascii_whitespace());
    if matches!(first, Some(b'{' | b'['))
        && serde_json::from_slice::<serde::de::IgnoredAny>(frame).is_ok()
    {
        ProtocolError::Json
    } else {
        error
    }
}

fn optional_id(field: &'static str, value: String) -> Result<Option<String>, ProtocolError> {
    bounded(field, &value, MAX_ID_BYTES)?;
    Ok(Some(value).filter(|v| !v.is_empty()))
}

/// The field number of `Envelope.header`.
const HEADER_FIELD: u64 = 1;

/// The header of a frame that [`decode_client_frame`] refused, when it can still be read, so the
/// error reply can echo its `correlation_id` (`specs/protocol.md`, "Every refusal answers its
/// request").
///
/// A text frame, an empty frame and a frame above `max_frame_bytes` are never read: `None`.
/// Otherwise the complete `header` fields before the first broken field are merged, as protobuf
/// merges a repeated message field; `None` when there is none or one does not decode. An id over
/// its bound is left out (never echoed); the rest of the header is kept.
pub fn refused_header(frame: &Frame, limits: &FrameLimits) -> Option<ClientHeader> {
    let Frame::Binary(bytes) = frame else {
        return None;
    };
    if bytes.is_empty() || bytes.len() > limits.max_frame_bytes {
        return None;
    }
    let mut header: Option<Header> = None;
    let mut unreadable = false;
    // A broken field ends the walk; the header fields before it still count.
    let _ = wire::walk_fields(bytes, |field, contents| {
        if field == HEADER_FIELD && !unreadable {
            unreadable = header
                .get_or_insert_with(Header::default)
                .merge(contents)
                .is_err();
        }
    });
    if unreadable {
        return None;
    }
    header.map(|header| {
        let id = |value: String| Some(value).filter(|v| !v.is_empty() && v.len() <= MAX_ID_BYTES);
        ClientHeader {
            trace: trace_context(&header),
            message_id: id(header.message_id),
            correlation_id: id(header.correlation_id),
            twist_id: id(header.twist_id),
        }
    })
}

/// The header's trace context, when its `traceparent` is well formed.
fn trace_context(header: &Header) -> Option<TraceContext> {
    is_traceparent(&header.traceparent).then(|| TraceContext {
        tracestate: if header.tracestate.len() <= MAX_TRACESTATE_BYTES {
            header.tracestate.clone()
        } else {
            String::new()
        },
        traceparent: header.traceparent.clone(),
    })
}

fn client_header(header: Header) -> Result<ClientHeader, ProtocolError> {
    Ok(ClientHeader {
        trace: trace_context(&header),
        message_id: optional_id("header.message_id", header.message_id)?,
        correlation_id: optional_id("header.correlation_id", header.correlation_id)?,
        twist_id: optional_id("header.twist_id", header.twist_id)?,
    })
}

/// Whether `value` is a W3C `traceparent`: `vv-<32 hex>-<16 hex>-<2 hex>`, lower-case, ids not
/// all zero, version not `ff`; version `00` has exactly this length, later versions may append
/// `-…`.
pub fn is_traceparent(value: &str) -> bool {
    let bytes = value.as_bytes();
    if bytes.len() < 55 || (bytes.len() > 55 && (bytes[0..2] == *b"00" || bytes[55] != b'-')) {
        return false;
    }
    let hex = |range: std::ops::Range<usize>| {
        bytes[range]
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    };
    let zero = |range: std::ops::Range<usize>| bytes[range].iter().all(|&b| b == b'0');
    bytes[2] == b'-'
        && bytes[35] == b'-'
        && bytes[52] == b'-'
        && hex(0..2)
        && hex(3..35)
        && hex(36..52)
        && hex(53..55)
        && bytes[0..2] != *b"ff"
        && !zero(3..35)
        && !zero(36..52)
}

fn room(value: &str) -> Result<RoomName, ProtocolError> {
    RoomName::parse(value).map_err(ProtocolError::InvalidRoom)
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.len() > max {
        return Err(ProtocolError::InvalidField {
            field,
            reason: "too long",
        });
    }
    Ok(())
}

fn required(field: &'static str, value: &str, max: usize) -> Result<(), ProtocolError> {
    if value.is_empty() {
        return Err(ProtocolError::MissingField { field });
    }
    bounded(field, value, max)
}

fn finite(field: &'static str, value: f64) -> Result<(), ProtocolError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ProtocolError::InvalidField {
            field,
            reason: "not a finite number",
        })
    }
}

fn finite_map(field: &'static str, map: &BTreeMap<String, f64>) -> Result<(), ProtocolError> {
    map.values().try_for_each(|&v| finite(field, v))
}

fn in_percent_range(field: &'static str, value: f64) -> Result<(), ProtocolError> {
    finite(field, value)?;
    if (0.0..=100.0).contains(&value) {
        Ok(())
    } else {
        Err(ProtocolError::InvalidField {
            field,
            reason: "outside [0, 100]",
        })
    }
}

fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ProtocolError> {
    const FIELD: &str = "join.metadata";
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ProtocolError::InvalidField {
            field: FIELD,
            reason: "too many entries",
        });
    }
    for (key, value) in metadata {
        required(FIELD, key, MAX_METADATA_KEY_BYTES)?;
        bounded(FIELD, value, MAX_METADATA_VALUE_BYTES)?;
    }
    Ok(())
}

fn history_request(request: crate::v1::HistoryRequest) -> Result<ClientCommand, ProtocolError> {
    let room = room(&request.room)?;
    let query = match request.since {
        Some(since) => {
            HistoryQuery::Since(Position::from_wire("history_request.since.epoch", since)?)
        }
        None if (1..=MAX_HISTORY_LAST).contains(&request.last) => HistoryQuery::Last(request.last),
        None => {
            return Err(ProtocolError::InvalidField {
                field: "history_request.last",
                reason: "must be 1..=1000 when since is absent",
            });
        }
    };
    Ok(ClientCommand::History { room, query })
}

fn client_command(body: Body, limits: &FrameLimits) -> Result<ClientCommand, ProtocolError> {
    let server_only = |body: &Body| ProtocolError::ServerOnlyBody {
        body: body_name(body),
    };
    Ok(match body {
        Body::Join(join) => {
            let room = room(&join.room)?;
            check_metadata(&join.metadata)?;
            let since = join
                .since
                .map(|since| Position::from_wire("join.since.epoch", since))
                .transpose()?;
            ClientCommand::Join {
                room,
                metadata: join.metadata,
                since,
            }
        }
        Body::HistoryRequest(request) => history_request(request)?,
        Body::Leave(leave) => ClientCommand::Leave {
            room: room(&leave.room)?,
        },
        Body::Publish(publish) => {
            let room = room(&publish.room)?;
            if publish.payload.len() > limits.max_payload_bytes {
                return Err(ProtocolError::PayloadTooLarge {
                    len: publish.payload.len(),
                    max: limits.max_payload_bytes,
                });
            }
            bounded(
                "publish.content_type",
                &publish.content_type,
                MAX_CONTENT_TYPE_BYTES,
            )?;
            ClientCommand::Publish {
                room,
                payload: publish.payload,
                content_type: publish.content_type,
            }
        }
        Body::Heartbeat(_) => ClientCommand::Heartbeat,
        Body::Ping(ping) => ClientCommand::Ping { nonce: ping.nonce },
        Body::Pong(pong) => ClientCommand::Pong { nonce: pong.nonce },
        Body::Refresh(refresh) => {
            required("refresh.token", &refresh.token, MAX_TOKEN_BYTES)?;
            ClientCommand::Refresh {
                token: SecretToken::new(refresh.token),
            }
        }
        Body::PresenceRequest(request) => {
            let room = room(&request.room)?;
            bounded(
                "presence_request.page_token",
                &request.page_token,
                MAX_PAGE_TOKEN_BYTES,
            )?;
            ClientCommand::PresenceRequest {
                room,
                page_size: request.page_size,
                page_token: Some(request.page_token).filter(|t| !t.is_empty()),
            }
        }
        Body::Ack(ack) => {
            required("ack.acked_message_id", &ack.acked_message_id, MAX_ID_BYTES)?;
            ClientCommand::Ack {
                message_id: ack.acked_message_id,
            }
        }
        body @ (Body::Welcome(_)
        | Body::Recovery(_)
        | Body::HistoryPage(_)
        | Body::Batch(_)
        | Body::Message(_)
        | Body::PresenceUpdate(_)
        | Body::PresenceLeave(_)
        | Body::Drain(_)
        | Body::Error(_)) => return Err(server_only(&body)),
        Body::Telemetry(m) => governance_telemetry(m)?,
        Body::Proposal(m) => governance_proposal(m)?,
        Body::Alert(m) => governance_alert(m)?,
        Body::Approval(m) => governance_approval(m)?,
        Body::Rejection(m) => {
            required("rejection.proposal_id", &m.proposal_id, MAX_ID_BYTES)?;
            ClientCommand::Governance(GovernanceCommand::Rejection(m))
        }
        Body::Enforce(m) => governance_enforce(m)?,
        Body::CatalogUpdate(m) => {
            required("catalog_update.source_uri", &m.source_uri, 2048)?;
            ClientCommand::Governance(GovernanceCommand::CatalogUpdate(m))
        }
    })
}

fn governance_telemetry(m: Telemetry) -> Result<ClientCommand, ProtocolError> {
    required("telemetry.node_id", &m.node_id, MAX_ID_BYTES)?;
    finite_map("telemetry.metrics", &m.metrics)?;
    Ok(ClientCommand::Governance(GovernanceCommand::Telemetry(m)))
}

fn governance_proposal(m: Proposal) -> Result<ClientCommand, ProtocolError> {
    required("proposal.id", &m.id, MAX_ID_BYTES)?;
    finite_map("proposal.params", &m.params)?;
    finite("proposal.confidence", m.confidence)?;
    if !(0.0..=1.0).contains(&m.confidence) {
        return Err(ProtocolError::InvalidField {
            field: "proposal.confidence",
            reason: "outside [0, 1]",
        });
    }
    if m.variant_id.is_none() && m.params.is_empty() {
        return Err(ProtocolError::MissingField {
            field: "proposal.variant_id",
        });
    }
    Ok(ClientCommand::Governance(GovernanceCommand::Proposal(m)))
}

fn governance_alert(m: Alert) -> Result<ClientCommand, ProtocolError> {
    match AlertSeverity::try_from(m.severity) {
        Ok(AlertSeverity::Unspecified) => {
            return Err(ProtocolError::MissingField {
                field: "alert.severity",
            });
        }
        Ok(_) => {}
        Err(_) => {
            return Err(ProtocolError::InvalidField {
                field: "alert.severity",
                reason: "unknown severity",
            });
        }
    }
    Ok(ClientCommand::Governance(GovernanceCommand::Alert(m)))
}

fn check_rollout(rollout: &RolloutConfig) -> Result<(), ProtocolError> {
    in_percent_range("approval.rollout.initial_percent", rollout.initial_percent)?;
    in_percent_range("approval.rollout.max_percent", rollout.max_percent)?;
    finite(
        "approval.rollout.increment_per_minute",
        rollout.increment_per_minute,
    )?;
    if rollout.increment_per_minute < 0.0 {
        return Err(ProtocolError::InvalidField {
            field: "approval.rollout.increment_per_minute",
            reason: "negative",
        });
    }
    if rollout.initial_percent > rollout.max_percent {
        return Err(ProtocolError::InvalidField {
            field: "approval.rollout.initial_percent",
            reason: "above max_percent",
        });
    }
    Ok(())
}

fn governance_approval(m: Approval) -> Result<ClientCommand, ProtocolError> {
    required("approval.proposal_id", &m.proposal_id, MAX_ID_BYTES)?;
    required("approval.proposal_digest", &m.proposal_digest, MAX_ID_BYTES)?;
    if let Some(rollout) = &m.rollout {
        check_rollout(rollout)?;
    }
    Ok(ClientCommand::Governance(GovernanceCommand::Approval(m)))
}

fn governance_enforce(m: Enforce) -> Result<ClientCommand, ProtocolError> {
    match &m.action {
        None => {
            return Err(ProtocolError::MissingField {
                field: "enforce.action",
            });
        }
        Some(enforce::Action::SetParams(set)) => {
            finite_map("enforce.set_params.params", &set.params)?;
        }
        Some(_) => {}
    }
    Ok(ClientCommand::Governance(GovernanceCommand::Enforce(m)))
}

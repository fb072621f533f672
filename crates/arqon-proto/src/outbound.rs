//! What the server sends: header stamping and constructors for every server → client envelope,
//! so no shell builds an envelope by hand.

use bytes::Bytes;
use prost::Message as _;

use crate::contract::PROTOCOL_VERSION;
use crate::decode::ClientHeader;
use crate::error::ProtocolError;
use crate::names::{RoomName, TenantId, UserId};
use crate::v1::{
    Ack, Drain, Envelope, Error, ErrorCode, Header, HistoryPage, LeaveReason, Limits, Member,
    Message, Ping, Pong, Position, PresenceLeave, PresenceUpdate, PresenceUpdateKind, Recovery,
    Welcome, envelope::Body,
};

/// Encodes an envelope. Encoding is deterministic (maps are ordered), so equal envelopes give
/// equal bytes.
pub fn encode_envelope(envelope: &Envelope) -> Bytes {
    Bytes::from(envelope.encode_to_vec())
}

/// Wraps a header and a body into an envelope. Every body type converts into [`Body`].
pub fn envelope(header: Header, body: impl Into<Body>) -> Envelope {
    Envelope {
        header: Some(header),
        body: Some(body.into()),
    }
}

/// The server's identity facts about one session, written into every envelope it routes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp<'a> {
    /// Tenant from the verified token.
    pub tenant: &'a TenantId,
    /// `sub` of the verified token.
    pub user: &'a UserId,
    /// The session id the Shield assigned.
    pub session_id: &'a str,
    /// Now, in microseconds since the Unix epoch (an input: this crate reads no clock).
    pub timestamp_us: u64,
}

impl Stamp<'_> {
    /// The header of an envelope this session sent, as the server routes it: the client's
    /// ids and trace context, and the server's tenant, user, session and timestamp. A missing
    /// `message_id` or `twist_id` is filled by `fresh_id`.
    pub fn header(&self, client: &ClientHeader, mut fresh_id: impl FnMut() -> String) -> Header {
        let trace = client.trace.clone().unwrap_or_default();
        Header {
            protocol_version: PROTOCOL_VERSION,
            message_id: client.message_id.clone().unwrap_or_else(&mut fresh_id),
            correlation_id: client.correlation_id.clone().unwrap_or_default(),
            twist_id: client.twist_id.clone().unwrap_or_else(&mut fresh_id),
            timestamp_us: self.timestamp_us,
            traceparent: trace.traceparent,
            tracestate: trace.tracestate,
            tenant_id: self.tenant.as_str().to_owned(),
            sender_user_id: self.user.as_str().to_owned(),
            sender_session_id: self.session_id.to_owned(),
        }
    }
}

/// The header of an envelope the server itself sends to a session of `tenant`: no sender, the
/// request's `correlation_id` echoed (empty when unsolicited).
pub fn server_header(
    tenant: &TenantId,
    message_id: String,
    correlation_id: &str,
    timestamp_us: u64,
) -> Header {
    Header {
        protocol_version: PROTOCOL_VERSION,
        message_id,
        correlation_id: correlation_id.to_owned(),
        twist_id: String::new(),
        timestamp_us,
        traceparent: String::new(),
        tracestate: String::new(),
        tenant_id: tenant.as_str().to_owned(),
        sender_user_id: String::new(),
        sender_session_id: String::new(),
    }
}

/// `Welcome`: the session is open.
pub fn welcome(
    header: Header,
    stamp: &Stamp<'_>,
    server_version: &str,
    heartbeat_interval_ms: u32,
    limits: Limits,
    node_id: &str,
) -> Envelope {
    envelope(
        header,
        Welcome {
            session_id: stamp.session_id.to_owned(),
            server_version: server_version.to_owned(),
            heartbeat_interval_ms,
            limits: Some(limits),
            tenant_id: stamp.tenant.as_str().to_owned(),
            user_id: stamp.user.as_str().to_owned(),
            node_id: node_id.to_owned(),
        },
    )
}

/// `Message`: a publish as delivered; `header` comes from [`Stamp::header`].
pub fn message(header: Header, room: &RoomName, payload: Bytes, content_type: String) -> Envelope {
    envelope(
        header,
        Message {
            room: room.as_str().to_owned(),
            payload,
            content_type,
            offset: 0,
            epoch: String::new(),
        },
    )
}

/// A stored `Message` frame with its history position merged in.
///
/// Protobuf merges a repeated occurrence of an embedded message field into the first, so
/// appending `Envelope { message: Message { offset, epoch } }` to the encoded frame sets those two
/// fields and leaves the rest untouched. The publishing node encodes each message once; every
/// receiving node appends the position once, whatever its number of local members.
pub fn with_position(frame: &[u8], offset: u64, epoch: &str) -> Bytes {
    let suffix = Envelope {
        header: None,
        body: Some(Body::Message(Message {
            offset,
            epoch: epoch.to_owned(),
            ..Message::default()
        })),
    };
    let mut bytes = Vec::with_capacity(frame.len() + suffix.encoded_len());
    bytes.extend_from_slice(frame);
    suffix.encode_raw(&mut bytes);
    Bytes::from(bytes)
}

/// A wire `Position`.
pub fn position(offset: u64, epoch: &str) -> Position {
    Position {
        offset,
        epoch: epoch.to_owned(),
    }
}

/// `Recovery`: the outcome of a join that carried `since`; `count` recovered messages follow it.
pub fn recovery(
    header: Header,
    room: &RoomName,
    recovered: bool,
    truncated: bool,
    count: u32,
    position: Option<Position>,
) -> Envelope {
    envelope(
        header,
        Recovery {
            room: room.as_str().to_owned(),
            recovered,
            truncated,
            count,
            position,
        },
    )
}

/// `HistoryPage`: stored envelopes (each already carrying its position), oldest first.
pub fn history_page(
    header: Header,
    room: &RoomName,
    messages: Vec<Envelope>,
    position: Option<Position>,
    truncated: bool,
) -> Envelope {
    envelope(
        header,
        HistoryPage {
            room: room.as_str().to_owned(),
            messages,
            position,
            truncated,
        },
    )
}

/// `Error` with a code and a human message (never a token or payload).
pub fn error(header: Header, code: ErrorCode, message: String, retry_after_ms: u32) -> Envelope {
    let correlation_id = header.correlation_id.clone();
    envelope(
        header,
        Error {
            code: code.into(),
            message,
            correlation_id,
            retry_after_ms,
        },
    )
}

/// `Error` for a refused frame: its code and its message.
pub fn protocol_error(header: Header, refused: &ProtocolError) -> Envelope {
    error(header, refused.code(), refused.to_string(), 0)
}

/// `PresenceUpdate` of kind `SNAPSHOT`: one page of the member list.
pub fn presence_snapshot(
    header: Header,
    room: &RoomName,
    members: Vec<Member>,
    next_page_token: String,
) -> Envelope {
    envelope(
        header,
        PresenceUpdate {
            room: room.as_str().to_owned(),
            members,
            kind: PresenceUpdateKind::Snapshot.into(),
            next_page_token,
        },
    )
}

/// `PresenceUpdate` of kind `JOIN`: members that just joined.
pub fn presence_join(header: Header, room: &RoomName, members: Vec<Member>) -> Envelope {
    envelope(
        header,
        PresenceUpdate {
            room: room.as_str().to_owned(),
            members,
            kind: PresenceUpdateKind::Join.into(),
            next_page_token: String::new(),
        },
    )
}

/// `PresenceLeave`: a member left.
pub fn presence_leave(
    header: Header,
    room: &RoomName,
    user: &UserId,
    session_id: &str,
    reason: LeaveReason,
) -> Envelope {
    envelope(
        header,
        PresenceLeave {
            room: room.as_str().to_owned(),
            user_id: user.as_str().to_owned(),
            session_id: session_id.to_owned(),
            reason: reason.into(),
        },
    )
}

/// `Ping` from the server.
pub fn ping(header: Header, nonce: u64) -> Envelope {
    envelope(header, Ping { nonce })
}

/// `Pong` answering a client's ping.
pub fn pong(header: Header, nonce: u64) -> Envelope {
    envelope(header, Pong { nonce })
}

/// `Ack` of a message id.
pub fn ack(header: Header, acked_message_id: String) -> Envelope {
    envelope(header, Ack { acked_message_id })
}

/// `Drain`: reconnect elsewhere after `reconnect_after_ms`.
pub fn drain(header: Header, reason: String, reconnect_after_ms: u32) -> Envelope {
    envelope(
        header,
        Drain {
            reason,
            reconnect_after_ms,
        },
    )
}

macro_rules! into_body {
    ($($variant:ident),* $(,)?) => {$(
        impl From<crate::v1::$variant> for Body {
            fn from(body: crate::v1::$variant) -> Self {
                Body::$variant(body)
            }
        }
    )*};
}
into_body!(
    Join,
    Leave,
    Publish,
    Heartbeat,
    Ping,
    Pong,
    Refresh,
    PresenceRequest,
    Ack,
    HistoryRequest,
    Welcome,
    Recovery,
    HistoryPage,
    Batch,
    Message,
    PresenceUpdate,
    PresenceLeave,
    Drain,
    Error,
    Telemetry,
    Proposal,
    Alert,
    Approval,
    Rejection,
    Enforce,
    CatalogUpdate,
);

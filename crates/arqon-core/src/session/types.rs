//! The Session machine's vocabulary: settings, identity, states, events, effects, refusals, and the
//! [`SessionMachine`] value itself. The transitions live in `transitions.rs`, the table in `table.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use arqon_proto::names::{RoomName, TenantId, UserId};
use arqon_proto::{CloseCode, Position};

use crate::history::{HistoryRead, Recovery};

use crate::limits::{Rate, RejectReason, Throttled, TokenBucket, Verdict as Admission};

/// Node-wide session settings (`[session]` in `arqon.toml`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    /// A session that sends nothing for this long is closed with `HEARTBEAT_TIMEOUT`.
    pub heartbeat_timeout_us: u64,
    /// The heartbeat interval advertised in `Welcome`.
    pub heartbeat_interval_ms: u32,
    /// Protocol errors tolerated; one more closes the session.
    pub max_protocol_errors: u32,
    /// Outbound messages dropped for slowness tolerated; one more closes the session.
    pub slow_consumer_threshold: u32,
}

/// The defaults of `[session]` and `[limits].slow_consumer_threshold`; `arqon-config` takes its
/// defaults from here, so they are written once.
impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            heartbeat_timeout_us: 45_000_000,
            heartbeat_interval_ms: 15_000,
            max_protocol_errors: 3,
            slow_consumer_threshold: 64,
        }
    }
}

/// Limits that apply to one session, taken from its tenant's limits at authentication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SessionLimits {
    /// Rooms the session may hold.
    pub max_rooms: u32,
    /// Largest publish payload, in bytes.
    pub max_payload_bytes: u32,
    /// Publish rate of this connection.
    pub publish: Rate,
}

/// The verified identity of a session; fixed once authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Tenant from the verified token.
    pub tenant: TenantId,
    /// `sub` from the verified token.
    pub user: UserId,
    /// Session id the node assigned.
    pub session: u64,
}

/// Everything an authenticated session holds.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Live {
    /// Who this is.
    pub identity: Identity,
    /// The tenant's limits for this session.
    pub limits: SessionLimits,
    /// Joined rooms. Shared: every step copies the session, and only a join or leave changes
    /// the set (`Arc::make_mut`), so a publish copies a pointer, not the set.
    pub rooms: Arc<BTreeSet<RoomName>>,
    /// Joined rooms whose history is being read for a recovering join: the join's request and
    /// `since`. Their live messages are held until the read is decided.
    pub recovering: BTreeMap<RoomName, (u64, Position)>,
    /// When the current token expires.
    pub token_expires_us: u64,
    /// Last time a frame arrived from the client.
    pub last_seen_us: u64,
    /// Protocol errors so far.
    pub protocol_errors: u32,
    /// Outbound messages dropped for slowness so far.
    pub slow_drops: u32,
    /// Publishes routed so far (feeds the default twist id).
    pub published: u64,
    /// The connection's publish bucket.
    pub bucket: TokenBucket,
}

/// The state of a session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionState {
    /// The HTTP request arrived; nothing checked yet.
    Connecting,
    /// The upgrade was requested; the token is being verified.
    Authenticating,
    /// Authenticated and routing.
    Active(Box<Live>),
    /// The node is draining; the client was told to reconnect elsewhere.
    Draining {
        /// The session.
        live: Box<Live>,
        /// When the session is closed regardless.
        deadline_us: u64,
    },
    /// Finished. Terminal.
    Closed {
        /// Why.
        reason: CloseReason,
    },
}

impl SessionState {
    /// The live session, in `active` or `draining`.
    pub fn live(&self) -> Option<&Live> {
        match self {
            Self::Active(live) | Self::Draining { live, .. } => Some(live),
            _ => None,
        }
    }
}

/// Why a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The token was refused before the upgrade (HTTP 401); the auth reason label.
    Unauthorized(&'static str),
    /// Admission refused the connection (HTTP 503).
    NotAdmitted(RejectReason),
    /// The client closed or the socket failed.
    ClientGone,
    /// The token expired with no valid refresh.
    TokenExpired,
    /// No frame within the heartbeat timeout.
    HeartbeatTimeout,
    /// Too many protocol errors.
    ProtocolErrors,
    /// A frame above the transport limit.
    FrameTooLarge,
    /// The outbound queue overflowed too often.
    SlowConsumer,
    /// A refresh tried to change the session's user or tenant.
    Forbidden,
    /// The node drained.
    Drained,
}

impl CloseReason {
    /// The WebSocket close (`specs/protocol.md`), or `None` when no WebSocket exists or is left.
    pub fn close(self) -> Option<CloseCode> {
        match self {
            Self::Unauthorized(_) | Self::NotAdmitted(_) | Self::ClientGone => None,
            Self::ProtocolErrors => Some(CloseCode::ProtocolErrors),
            Self::TokenExpired => Some(CloseCode::TokenExpired),
            Self::Forbidden => Some(CloseCode::Forbidden),
            Self::HeartbeatTimeout => Some(CloseCode::HeartbeatTimeout),
            Self::SlowConsumer => Some(CloseCode::SlowConsumer),
            Self::Drained => Some(CloseCode::ServerDraining),
            Self::FrameTooLarge => Some(CloseCode::FrameTooLarge),
        }
    }

    /// The numeric WebSocket close code of [`CloseReason::close`].
    pub fn close_code(self) -> Option<u16> {
        self.close().map(CloseCode::code)
    }

    /// Stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized(_) => "unauthorized",
            Self::NotAdmitted(_) => "not_admitted",
            Self::ClientGone => "client_gone",
            Self::TokenExpired => "token_expired",
            Self::HeartbeatTimeout => "heartbeat_timeout",
            Self::ProtocolErrors => "protocol_errors",
            Self::FrameTooLarge => "frame_too_large",
            Self::SlowConsumer => "slow_consumer",
            Self::Forbidden => "forbidden",
            Self::Drained => "drained",
        }
    }
}

/// Error codes the session sends in `Error` envelopes (mirrors `arqon.v1.ErrorCode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// Undecodable or invalid frame.
    ProtocolError,
    /// A text frame.
    TextFrame,
    /// A frame over the transport limit.
    FrameTooLarge,
    /// `protocol_version` is not 1.
    UnsupportedVersion,
    /// Room name outside the grammar.
    InvalidRoom,
    /// The session is not in that room.
    NotInRoom,
    /// Join beyond the room limit.
    RoomLimit,
    /// Publish payload over the limit.
    PayloadTooLarge,
    /// Publish rate exceeded.
    RateLimited,
    /// A refresh token past `exp`.
    TokenExpired,
    /// A refresh token that does not verify.
    TokenInvalid,
    /// A refresh for another user or tenant.
    Forbidden,
    /// The policy chain refused the message.
    PolicyBlocked,
    /// A policy trapped.
    PolicyTrap,
    /// A policy ran out of time.
    PolicyTimeout,
    /// A policy ran out of memory.
    PolicyMemory,
    /// A policy broke the host ABI.
    PolicyAbi,
    /// A policy could not be loaded.
    PolicyLoad,
    /// The node is draining.
    ServerDraining,
    /// The tenant keeps no history, or it cannot be read now.
    HistoryUnavailable,
}

/// The policy chain's answer for one publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyVerdict {
    /// Route it.
    Allow,
    /// Do not route it; the error code says why (a `Policy*` code).
    Block(ErrorCode),
}

/// The outcome of verifying a refresh token.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefreshOutcome {
    /// The token verified; its identity and expiry.
    Valid {
        /// Its tenant.
        tenant: TenantId,
        /// Its `sub`.
        user: UserId,
        /// Its `exp`, in µs.
        expires_us: u64,
    },
    /// The token is past `exp`.
    Expired,
    /// The token does not verify; the auth reason label.
    Invalid(&'static str),
}

/// An input to the session.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionEvent {
    /// The client asked for the WebSocket upgrade.
    Upgrade {
        /// When.
        now_us: u64,
    },
    /// The token verified; the identity and the tenant/user admission verdict.
    TokenValid {
        /// Verified identity and assigned session id.
        identity: Identity,
        /// The token's `exp`, in µs.
        expires_us: u64,
        /// The tenant's limits for this session.
        limits: SessionLimits,
        /// Tenant/user connection caps.
        admission: Admission,
        /// When.
        now_us: u64,
    },
    /// The token did not verify; the auth reason label.
    TokenInvalid {
        /// Reason label (`arqon_auth`), never token text.
        reason: &'static str,
    },
    /// The token verified but is past `exp`.
    TokenExpired,
    /// Join a room.
    Join {
        /// The room.
        room: RoomName,
        /// Request id (the shell maps it to the client's correlation id).
        request: u64,
        /// Where to recover from (`Join.since`); `None` for a plain join.
        since: Option<Position>,
        /// When.
        now_us: u64,
    },
    /// The history read of a recovering join finished.
    HistoryRead {
        /// The room.
        room: RoomName,
        /// The join's request.
        request: u64,
        /// What the store reported; `None` when it could not be read.
        read: Option<HistoryRead>,
    },
    /// Read a room's history without joining it (`HistoryRequest`); the shell holds the query.
    HistoryRequest {
        /// The room.
        room: RoomName,
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// The history read of a `HistoryRequest` finished.
    HistoryAnswer {
        /// The room.
        room: RoomName,
        /// The request.
        request: u64,
        /// Whether the store answered (the shell holds the page).
        available: bool,
    },
    /// Leave a room.
    Leave {
        /// The room.
        room: RoomName,
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// Publish to a room.
    Publish {
        /// The room.
        room: RoomName,
        /// Request id; the shell holds the payload under it.
        request: u64,
        /// Payload length, in bytes.
        payload_len: u32,
        /// When.
        now_us: u64,
    },
    /// The tenant's node-wide publish bucket answered a `ChargeTenant`.
    TenantBudget {
        /// The room of the publish.
        room: RoomName,
        /// Request id of the publish.
        request: u64,
        /// `Ok` when the bucket gave a token.
        verdict: Result<(), Throttled>,
        /// When.
        now_us: u64,
    },
    /// The policy chain decided on a publish.
    PolicyVerdict {
        /// The room of the publish.
        room: RoomName,
        /// Request id of the publish.
        request: u64,
        /// The verdict.
        verdict: PolicyVerdict,
        /// When.
        now_us: u64,
    },
    /// Application heartbeat or ping.
    Heartbeat {
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// A governance body (telemetry, proposal, alert, or a Tier-1/operator command); the shell
    /// holds the body. The tenant's governance writer decides it and answers.
    Governance {
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// A page of a room's member list (`PresenceRequest`); the shell holds the page size and token.
    PresenceRequest {
        /// The room.
        room: RoomName,
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// In-band token refresh.
    Refresh {
        /// The verification outcome.
        outcome: RefreshOutcome,
        /// Request id.
        request: u64,
        /// When.
        now_us: u64,
    },
    /// A timer fired.
    Tick {
        /// When.
        now_us: u64,
    },
    /// An outbound message was dropped because the connection's queue was full.
    SlowConsumer,
    /// The node starts draining.
    Drain {
        /// When the session is closed regardless.
        deadline_us: u64,
    },
    /// The socket closed or failed.
    SocketClosed,
    /// A frame did not decode or validate.
    ProtocolError {
        /// The code for the error envelope.
        code: ErrorCode,
        /// The request whose header could still be read (the shell maps it to the client's
        /// correlation id); `None` when no header could be read (a text frame, a frame that is not
        /// protobuf, an oversized frame).
        request: Option<u64>,
        /// When.
        now_us: u64,
    },
}

/// The server-owned header fields of a routed envelope.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Stamp {
    /// Tenant of the sender.
    pub tenant: TenantId,
    /// Sender user.
    pub sender: UserId,
    /// Sender session.
    pub session: u64,
    /// Server time the publish was accepted.
    pub timestamp_us: u64,
    /// The twist id to use when the client sent none.
    pub default_twist_id: String,
}

/// An instruction to the Shield.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SessionEffect {
    /// Answer the upgrade request with an HTTP error.
    RejectUpgrade {
        /// 401 or 503.
        status: u16,
        /// Reason label for the metric.
        reason: &'static str,
        /// `Retry-After` (ms, rounded up to seconds on the wire) for 503.
        retry_after_ms: Option<u64>,
    },
    /// Complete the WebSocket upgrade.
    AcceptUpgrade,
    /// Send `Welcome`.
    SendWelcome {
        /// Heartbeat interval to advertise.
        heartbeat_interval_ms: u32,
    },
    /// Send `Error`.
    SendError {
        /// The code.
        code: ErrorCode,
        /// The request it answers, if any.
        request: Option<u64>,
        /// When to retry, for `RateLimited`.
        retry_after_ms: Option<u64>,
    },
    /// Send `Ack` for a request.
    SendAck {
        /// The request.
        request: u64,
    },
    /// Send `Pong` for a heartbeat or ping.
    SendPong {
        /// The request.
        request: u64,
    },
    /// Forward the request's governance body to the tenant's control plane (`gov.up`). The
    /// writer's answer (an `Ack`, or an `Error` such as `FORBIDDEN`) is the request's one reply.
    ForwardGovernance {
        /// The request.
        request: u64,
    },
    /// Send the room's member list (`PresenceUpdate` kind `SNAPSHOT`): every page after a join
    /// (the joiner's snapshot), or the page a `PresenceRequest` asked for.
    SendPresence {
        /// The room (one the session is in).
        room: RoomName,
        /// The request: the join, or the presence request holding the page size and token.
        request: u64,
        /// Every page (after a join) or only the requested one.
        full: bool,
    },
    /// Send `Drain`: reconnect elsewhere.
    SendDrain,
    /// Add this session to the room's node-wide subscription.
    Subscribe {
        /// The room.
        room: RoomName,
        /// Hold the room's live messages for this session until `OpenGate` (a recovering join).
        gated: bool,
    },
    /// Read the room's history after `after` (the recovery limit's newest); answer with
    /// `HistoryRead`.
    FetchHistory {
        /// The room.
        room: RoomName,
        /// The join's request.
        request: u64,
        /// Read the messages with a greater offset.
        after: u64,
    },
    /// Send `Recovery` for the join, then the first `recovery.count` messages read, in order.
    SendRecovery {
        /// The room.
        room: RoomName,
        /// The join's request.
        request: u64,
        /// The decision.
        recovery: Recovery,
    },
    /// Deliver the held live messages whose offset is greater than `after`, in order, then stop
    /// holding.
    OpenGate {
        /// The room.
        room: RoomName,
        /// Offsets up to this were read from history or precede the join point.
        after: u64,
    },
    /// Read the room's history for a `HistoryRequest`; answer with `HistoryAnswer`.
    ReadHistory {
        /// The room.
        room: RoomName,
        /// The request holding the query.
        request: u64,
    },
    /// Send the page read for a `HistoryRequest`.
    SendHistory {
        /// The room.
        room: RoomName,
        /// The request.
        request: u64,
    },
    /// Remove this session from the room's node-wide subscription.
    Unsubscribe {
        /// The room.
        room: RoomName,
    },
    /// Take one token from the tenant's node-wide publish bucket; answer with `TenantBudget`.
    ///
    /// Emitted only after the session's own checks passed, so a publish the session refuses
    /// costs the tenant nothing.
    ChargeTenant {
        /// The room.
        room: RoomName,
        /// The request holding the payload.
        request: u64,
    },
    /// Run the tenant's policy chain on the held payload; answer with `PolicyVerdict`.
    RunPolicy {
        /// The room.
        room: RoomName,
        /// The request holding the payload.
        request: u64,
    },
    /// Stamp the held payload and publish it to the room's subject.
    Publish {
        /// The room.
        room: RoomName,
        /// The request holding the payload.
        request: u64,
        /// Server-owned header fields.
        stamp: Stamp,
    },
    /// Announce the session in the room's presence.
    PresenceJoin {
        /// The room.
        room: RoomName,
    },
    /// Remove the session from the room's presence.
    PresenceLeave {
        /// The room.
        room: RoomName,
    },
    /// Close the WebSocket with this code and drop the connection.
    Close {
        /// WebSocket close code.
        code: u16,
    },
    /// Step a `Tick` at this time.
    ScheduleTick {
        /// µs since the epoch.
        at_us: u64,
    },
}

/// Why an event was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SessionRejection {
    /// The session is closed; nothing happens any more.
    #[error("session is closed")]
    Closed,
    /// The event makes no sense in this state.
    #[error("{event} is not allowed while {state}")]
    NotAllowed {
        /// The state kind.
        state: &'static str,
        /// The event kind.
        event: &'static str,
    },
}

/// The Session machine; one value serves every session of a node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMachine {
    /// Node-wide settings.
    pub config: SessionConfig,
}

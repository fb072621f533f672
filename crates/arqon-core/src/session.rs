//! The Session machine: one client connection from upgrade to close, as a pure step function.
//!
//! `specs/session.md`. States `connecting → authenticating → active → draining → closed`. The Shield
//! steps it with every socket event and executes the effects; it never decides anything itself.
//! Time is the `now_us` field of events (µs since the Unix epoch).

use std::collections::BTreeSet;

use arqon_proto::CloseCode;
use arqon_proto::names::{RoomName, TenantId, UserId};

use crate::limits::{Rate, RejectReason, Throttled, TokenBucket, Verdict as Admission};
use crate::machine::{Explore, InvariantViolation, Machine, Step, Transition};

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
    /// Joined rooms.
    pub rooms: BTreeSet<RoomName>,
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
        /// When.
        now_us: u64,
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

type Outcome = Step<SessionState, SessionEffect>;

fn step(state: SessionState, effects: Vec<SessionEffect>) -> Outcome {
    Step { state, effects }
}

fn error(code: ErrorCode, request: Option<u64>) -> SessionEffect {
    SessionEffect::SendError {
        code,
        request,
        retry_after_ms: None,
    }
}

/// Whether a refused frame broke the protocol (and counts against `max_protocol_errors`), rather
/// than asking for something invalid (a bad room name, a payload over the limit).
fn breaks_protocol(code: ErrorCode) -> bool {
    !matches!(code, ErrorCode::InvalidRoom | ErrorCode::PayloadTooLarge)
}

fn rate_limited(request: u64, throttled: Throttled) -> SessionEffect {
    SessionEffect::SendError {
        code: ErrorCode::RateLimited,
        request: Some(request),
        retry_after_ms: Some(throttled.retry_after_ms),
    }
}

fn reject(
    status: u16,
    reason: &'static str,
    retry_after_ms: Option<u64>,
    why: CloseReason,
) -> Outcome {
    step(
        SessionState::Closed { reason: why },
        vec![SessionEffect::RejectUpgrade {
            status,
            reason,
            retry_after_ms,
        }],
    )
}

/// Closes a live session: leaves every room, then closes the socket when one is left.
fn close(live: &Live, reason: CloseReason) -> Outcome {
    let mut effects = Vec::with_capacity(live.rooms.len() * 2 + 1);
    for room in &live.rooms {
        effects.push(SessionEffect::Unsubscribe { room: room.clone() });
        effects.push(SessionEffect::PresenceLeave { room: room.clone() });
    }
    if let Some(code) = reason.close_code() {
        effects.push(SessionEffect::Close { code });
    }
    step(SessionState::Closed { reason }, effects)
}

/// Re-wraps a changed live session in the state kind it came from.
fn keep(before: &SessionState, live: Live, effects: Vec<SessionEffect>) -> Outcome {
    let state = match before {
        SessionState::Draining { deadline_us, .. } => SessionState::Draining {
            live: Box::new(live),
            deadline_us: *deadline_us,
        },
        _ => SessionState::Active(Box::new(live)),
    };
    step(state, effects)
}

impl SessionMachine {
    /// The next time a `Tick` must be stepped for `live`.
    fn deadline(&self, live: &Live, drain_deadline: Option<u64>) -> u64 {
        let heartbeat = live
            .last_seen_us
            .saturating_add(self.config.heartbeat_timeout_us);
        let due = heartbeat.min(live.token_expires_us);
        drain_deadline.map_or(due, |drain| due.min(drain))
    }

    fn authenticated(
        &self,
        identity: &Identity,
        expires_us: u64,
        limits: SessionLimits,
        admission: Admission,
        now_us: u64,
    ) -> Outcome {
        if let Admission::Reject {
            retry_after_ms,
            reason,
        } = admission
        {
            return reject(
                503,
                reason.as_str(),
                Some(retry_after_ms),
                CloseReason::NotAdmitted(reason),
            );
        }
        if expires_us <= now_us {
            return reject(401, "expired", None, CloseReason::Unauthorized("expired"));
        }
        let live = Live {
            identity: identity.clone(),
            limits,
            rooms: BTreeSet::new(),
            token_expires_us: expires_us,
            last_seen_us: now_us,
            protocol_errors: 0,
            slow_drops: 0,
            published: 0,
            bucket: TokenBucket::new(limits.publish, now_us),
        };
        let at_us = self.deadline(&live, None);
        step(
            SessionState::Active(Box::new(live)),
            vec![
                SessionEffect::AcceptUpgrade,
                SessionEffect::SendWelcome {
                    heartbeat_interval_ms: self.config.heartbeat_interval_ms,
                },
                SessionEffect::ScheduleTick { at_us },
            ],
        )
    }

    /// A client frame in `active` or `draining`; `live` is a copy already marked as seen.
    #[allow(clippy::too_many_lines)]
    fn client_event(&self, before: &SessionState, mut live: Live, event: &SessionEvent) -> Outcome {
        let draining = matches!(before, SessionState::Draining { .. });
        match event {
            SessionEvent::Join { room, request, .. } => {
                if draining {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::ServerDraining, Some(*request))],
                    );
                }
                if live.rooms.contains(room) {
                    return keep(
                        before,
                        live,
                        vec![SessionEffect::SendAck { request: *request }],
                    );
                }
                if live.rooms.len() >= live.limits.max_rooms as usize {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::RoomLimit, Some(*request))],
                    );
                }
                live.rooms.insert(room.clone());
                let effects = vec![
                    SessionEffect::Subscribe { room: room.clone() },
                    SessionEffect::PresenceJoin { room: room.clone() },
                    SessionEffect::SendAck { request: *request },
                    SessionEffect::SendPresence {
                        room: room.clone(),
                        request: *request,
                        full: true,
                    },
                ];
                keep(before, live, effects)
            }
            SessionEvent::Leave { room, request, .. } => {
                if !live.rooms.remove(room) {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::NotInRoom, Some(*request))],
                    );
                }
                let effects = vec![
                    SessionEffect::Unsubscribe { room: room.clone() },
                    SessionEffect::PresenceLeave { room: room.clone() },
                    SessionEffect::SendAck { request: *request },
                ];
                keep(before, live, effects)
            }
            SessionEvent::Publish {
                room,
                request,
                payload_len,
                now_us,
            } => {
                let request = *request;
                if draining {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::ServerDraining, Some(request))],
                    );
                }
                if !live.rooms.contains(room) {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::NotInRoom, Some(request))],
                    );
                }
                if *payload_len > live.limits.max_payload_bytes {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::PayloadTooLarge, Some(request))],
                    );
                }
                if let Err(throttled) = live.bucket.try_take(*now_us) {
                    return keep(before, live, vec![rate_limited(request, throttled)]);
                }
                let effect = SessionEffect::ChargeTenant {
                    room: room.clone(),
                    request,
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::Heartbeat { request, .. } => keep(
                before,
                live,
                vec![SessionEffect::SendPong { request: *request }],
            ),
            SessionEvent::PresenceRequest { room, request, .. } => {
                let effect = if live.rooms.contains(room) {
                    SessionEffect::SendPresence {
                        room: room.clone(),
                        request: *request,
                        full: false,
                    }
                } else {
                    error(ErrorCode::NotInRoom, Some(*request))
                };
                keep(before, live, vec![effect])
            }
            SessionEvent::Refresh {
                outcome, request, ..
            } => self.refresh(before, live, outcome, *request, draining),
            SessionEvent::ProtocolError { code, request, .. } => {
                if *code == ErrorCode::FrameTooLarge {
                    return close(&live, CloseReason::FrameTooLarge);
                }
                // A well-formed request for a bad room or too large a payload is refused like any
                // other request; only frames that break the protocol count against its budget.
                if breaks_protocol(*code) {
                    live.protocol_errors = live.protocol_errors.saturating_add(1);
                    if live.protocol_errors > self.config.max_protocol_errors {
                        return close(&live, CloseReason::ProtocolErrors);
                    }
                }
                // Every refusal answers its request when its header could be read.
                keep(before, live, vec![error(*code, *request)])
            }
            _ => keep(before, live, Vec::new()),
        }
    }

    fn refresh(
        &self,
        before: &SessionState,
        mut live: Live,
        outcome: &RefreshOutcome,
        request: u64,
        draining: bool,
    ) -> Outcome {
        if draining {
            return keep(
                before,
                live,
                vec![error(ErrorCode::ServerDraining, Some(request))],
            );
        }
        match outcome {
            RefreshOutcome::Expired => keep(
                before,
                live,
                vec![error(ErrorCode::TokenExpired, Some(request))],
            ),
            RefreshOutcome::Invalid(_) => keep(
                before,
                live,
                vec![error(ErrorCode::TokenInvalid, Some(request))],
            ),
            RefreshOutcome::Valid {
                tenant,
                user,
                expires_us,
            } => {
                if *tenant != live.identity.tenant || *user != live.identity.user {
                    return close(&live, CloseReason::Forbidden);
                }
                if *expires_us <= live.last_seen_us {
                    return keep(
                        before,
                        live,
                        vec![error(ErrorCode::TokenExpired, Some(request))],
                    );
                }
                live.token_expires_us = live.token_expires_us.max(*expires_us);
                let at_us = self.deadline(&live, None);
                keep(
                    before,
                    live,
                    vec![
                        SessionEffect::SendAck { request },
                        SessionEffect::ScheduleTick { at_us },
                    ],
                )
            }
        }
    }

    /// The tenant bucket's answer: throttled publishes get `RATE_LIMITED`, the rest go to policy.
    fn tenant_budget(
        before: &SessionState,
        live: Live,
        room: &RoomName,
        request: u64,
        verdict: Result<(), Throttled>,
    ) -> Outcome {
        if let Err(throttled) = verdict {
            return keep(before, live, vec![rate_limited(request, throttled)]);
        }
        if !live.rooms.contains(room) {
            return keep(
                before,
                live,
                vec![error(ErrorCode::NotInRoom, Some(request))],
            );
        }
        let effect = SessionEffect::RunPolicy {
            room: room.clone(),
            request,
        };
        keep(before, live, vec![effect])
    }

    fn verdict(
        before: &SessionState,
        mut live: Live,
        room: &RoomName,
        request: u64,
        verdict: PolicyVerdict,
        now_us: u64,
    ) -> Outcome {
        if let PolicyVerdict::Block(code) = verdict {
            return keep(before, live, vec![error(code, Some(request))]);
        }
        if !live.rooms.contains(room) {
            return keep(
                before,
                live,
                vec![error(ErrorCode::NotInRoom, Some(request))],
            );
        }
        live.published = live.published.wrapping_add(1);
        let stamp = Stamp {
            tenant: live.identity.tenant.clone(),
            sender: live.identity.user.clone(),
            session: live.identity.session,
            timestamp_us: now_us,
            default_twist_id: format!("{:016x}-{:x}", live.identity.session, live.published),
        };
        let effects = vec![
            SessionEffect::Publish {
                room: room.clone(),
                request,
                stamp,
            },
            SessionEffect::SendAck { request },
        ];
        keep(before, live, effects)
    }

    fn tick(&self, before: &SessionState, live: &Live, now_us: u64) -> Outcome {
        let drain_deadline = match before {
            SessionState::Draining { deadline_us, .. } => Some(*deadline_us),
            _ => None,
        };
        if now_us >= live.token_expires_us {
            return close(live, CloseReason::TokenExpired);
        }
        if now_us
            >= live
                .last_seen_us
                .saturating_add(self.config.heartbeat_timeout_us)
        {
            return close(live, CloseReason::HeartbeatTimeout);
        }
        if drain_deadline.is_some_and(|deadline| now_us >= deadline) {
            return close(live, CloseReason::Drained);
        }
        let at_us = self.deadline(live, drain_deadline);
        keep(
            before,
            live.clone(),
            vec![SessionEffect::ScheduleTick { at_us }],
        )
    }

    fn live_event(
        &self,
        before: &SessionState,
        live: &Live,
        event: &SessionEvent,
    ) -> Result<Outcome, SessionRejection> {
        Ok(match event {
            SessionEvent::Tick { now_us } => self.tick(before, live, *now_us),
            SessionEvent::SocketClosed => close(live, CloseReason::ClientGone),
            SessionEvent::SlowConsumer => {
                let mut live = live.clone();
                live.slow_drops = live.slow_drops.saturating_add(1);
                if live.slow_drops > self.config.slow_consumer_threshold {
                    return Ok(close(&live, CloseReason::SlowConsumer));
                }
                keep(before, live, Vec::new())
            }
            SessionEvent::PolicyVerdict {
                room,
                request,
                verdict,
                now_us,
            } => Self::verdict(before, live.clone(), room, *request, *verdict, *now_us),
            SessionEvent::TenantBudget {
                room,
                request,
                verdict,
                ..
            } => Self::tenant_budget(before, live.clone(), room, *request, *verdict),
            SessionEvent::Drain { deadline_us } => {
                if matches!(before, SessionState::Draining { .. }) {
                    return Err(not_allowed(before, event));
                }
                let at_us = self.deadline(live, Some(*deadline_us));
                step(
                    SessionState::Draining {
                        live: Box::new(live.clone()),
                        deadline_us: *deadline_us,
                    },
                    vec![
                        SessionEffect::SendDrain,
                        SessionEffect::ScheduleTick { at_us },
                    ],
                )
            }
            SessionEvent::Join { now_us, .. }
            | SessionEvent::Leave { now_us, .. }
            | SessionEvent::Publish { now_us, .. }
            | SessionEvent::Heartbeat { now_us, .. }
            | SessionEvent::PresenceRequest { now_us, .. }
            | SessionEvent::Refresh { now_us, .. }
            | SessionEvent::ProtocolError { now_us, .. } => {
                let mut seen = live.clone();
                seen.last_seen_us = seen.last_seen_us.max(*now_us);
                self.client_event(before, seen, event)
            }
            SessionEvent::Upgrade { .. }
            | SessionEvent::TokenValid { .. }
            | SessionEvent::TokenInvalid { .. }
            | SessionEvent::TokenExpired => return Err(not_allowed(before, event)),
        })
    }
}

fn not_allowed(state: &SessionState, event: &SessionEvent) -> SessionRejection {
    SessionRejection::NotAllowed {
        state: SessionMachine::state_kind(state),
        event: SessionMachine::event_kind(event),
    }
}

const CONNECTING: &str = "connecting";
const AUTHENTICATING: &str = "authenticating";
const ACTIVE: &str = "active";
const DRAINING: &str = "draining";
const CLOSED: &str = "closed";

macro_rules! row {
    ($from:expr, $event:literal, $to:expr, $guard:literal, [$($effect:literal),*]) => {
        Transition { from: $from, event: $event, to: $to, guard: $guard, effects: &[$($effect),*] }
    };
}

/// The transition table; `state_machines/session.md` is rendered from it.
static TRANSITIONS: &[Transition] = &[
    row!(CONNECTING, "upgrade", AUTHENTICATING, "", []),
    row!(CONNECTING, "drain", CLOSED, "", ["reject_upgrade"]),
    row!(CONNECTING, "socket_closed", CLOSED, "", []),
    row!(
        AUTHENTICATING,
        "token_valid",
        ACTIVE,
        "admitted and exp > now",
        ["accept_upgrade", "send_welcome", "schedule_tick"]
    ),
    row!(
        AUTHENTICATING,
        "token_valid",
        CLOSED,
        "tenant or user over its connection cap (503), or exp <= now (401)",
        ["reject_upgrade"]
    ),
    row!(
        AUTHENTICATING,
        "token_invalid",
        CLOSED,
        "",
        ["reject_upgrade"]
    ),
    row!(
        AUTHENTICATING,
        "token_expired",
        CLOSED,
        "",
        ["reject_upgrade"]
    ),
    row!(AUTHENTICATING, "drain", CLOSED, "", ["reject_upgrade"]),
    row!(AUTHENTICATING, "socket_closed", CLOSED, "", []),
    row!(
        ACTIVE,
        "join",
        ACTIVE,
        "new room below max_rooms: subscribe, then the member list after the ack; already in: ack; at the limit: ROOM_LIMIT",
        [
            "subscribe",
            "presence_join",
            "send_ack",
            "send_presence",
            "send_error"
        ]
    ),
    row!(
        ACTIVE,
        "leave",
        ACTIVE,
        "in the room: unsubscribe; else NOT_IN_ROOM",
        ["unsubscribe", "presence_leave", "send_ack", "send_error"]
    ),
    row!(
        ACTIVE,
        "publish",
        ACTIVE,
        "in room, payload within limit, connection bucket allows: charge the tenant bucket; else NOT_IN_ROOM / PAYLOAD_TOO_LARGE / RATE_LIMITED",
        ["charge_tenant", "send_error"]
    ),
    row!(
        ACTIVE,
        "tenant_budget",
        ACTIVE,
        "tenant bucket gave a token and still in room: run policy; else RATE_LIMITED / NOT_IN_ROOM",
        ["run_policy", "send_error"]
    ),
    row!(
        ACTIVE,
        "policy_verdict",
        ACTIVE,
        "allow and still in room: publish stamped; else the block code or NOT_IN_ROOM",
        ["publish", "send_ack", "send_error"]
    ),
    row!(ACTIVE, "heartbeat", ACTIVE, "", ["send_pong"]),
    row!(
        ACTIVE,
        "presence_request",
        ACTIVE,
        "in the room: send the page; else NOT_IN_ROOM",
        ["send_presence", "send_error"]
    ),
    row!(
        ACTIVE,
        "refresh",
        ACTIVE,
        "same sub and tenant, exp > now: extend; expired or invalid: error",
        ["send_ack", "schedule_tick", "send_error"]
    ),
    row!(
        ACTIVE,
        "refresh",
        CLOSED,
        "valid token of another sub or tenant (FORBIDDEN)",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(ACTIVE, "tick", ACTIVE, "nothing due", ["schedule_tick"]),
    row!(
        ACTIVE,
        "tick",
        CLOSED,
        "now >= token exp (TOKEN_EXPIRED) or now >= last seen + heartbeat timeout (HEARTBEAT_TIMEOUT)",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(ACTIVE, "slow_consumer", ACTIVE, "drops <= threshold", []),
    row!(
        ACTIVE,
        "slow_consumer",
        CLOSED,
        "drops > threshold (SLOW_CONSUMER)",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(
        ACTIVE,
        "drain",
        DRAINING,
        "",
        ["send_drain", "schedule_tick"]
    ),
    row!(
        ACTIVE,
        "socket_closed",
        CLOSED,
        "",
        ["unsubscribe", "presence_leave"]
    ),
    row!(
        ACTIVE,
        "protocol_error",
        ACTIVE,
        "errors <= max_protocol_errors; the error answers the request when its header was read",
        ["send_error"]
    ),
    row!(
        ACTIVE,
        "protocol_error",
        CLOSED,
        "errors > max_protocol_errors (PROTOCOL_ERRORS) or frame too large",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(
        DRAINING,
        "join",
        DRAINING,
        "SERVER_DRAINING",
        ["send_error"]
    ),
    row!(
        DRAINING,
        "leave",
        DRAINING,
        "in the room: unsubscribe; else NOT_IN_ROOM",
        ["unsubscribe", "presence_leave", "send_ack", "send_error"]
    ),
    row!(
        DRAINING,
        "publish",
        DRAINING,
        "SERVER_DRAINING",
        ["send_error"]
    ),
    row!(
        DRAINING,
        "tenant_budget",
        DRAINING,
        "in-flight publishes go on like in active",
        ["run_policy", "send_error"]
    ),
    row!(
        DRAINING,
        "policy_verdict",
        DRAINING,
        "in-flight publishes are flushed like in active",
        ["publish", "send_ack", "send_error"]
    ),
    row!(DRAINING, "heartbeat", DRAINING, "", ["send_pong"]),
    row!(
        DRAINING,
        "presence_request",
        DRAINING,
        "in the room: send the page; else NOT_IN_ROOM",
        ["send_presence", "send_error"]
    ),
    row!(
        DRAINING,
        "refresh",
        DRAINING,
        "SERVER_DRAINING",
        ["send_error"]
    ),
    row!(DRAINING, "tick", DRAINING, "nothing due", ["schedule_tick"]),
    row!(
        DRAINING,
        "tick",
        CLOSED,
        "drain deadline, token exp or heartbeat timeout reached",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(
        DRAINING,
        "slow_consumer",
        DRAINING,
        "drops <= threshold",
        []
    ),
    row!(
        DRAINING,
        "slow_consumer",
        CLOSED,
        "drops > threshold (SLOW_CONSUMER)",
        ["unsubscribe", "presence_leave", "close"]
    ),
    row!(
        DRAINING,
        "socket_closed",
        CLOSED,
        "",
        ["unsubscribe", "presence_leave"]
    ),
    row!(
        DRAINING,
        "protocol_error",
        DRAINING,
        "errors <= max_protocol_errors; the error answers the request when its header was read",
        ["send_error"]
    ),
    row!(
        DRAINING,
        "protocol_error",
        CLOSED,
        "errors > max_protocol_errors or frame too large",
        ["unsubscribe", "presence_leave", "close"]
    ),
];

static INVARIANTS: &[(&str, &str)] = &[
    (
        "tenant-fixed",
        "once authenticated, the tenant, user and session id never change",
    ),
    (
        "nothing-before-active",
        "no subscribe, publish, charge_tenant, run_policy or presence effect before active",
    ),
    ("closed-terminal", "every event in closed is refused"),
    (
        "room-limit",
        "a session never holds more than max_rooms rooms",
    ),
    (
        "closed-has-no-rooms",
        "closing leaves every room held: one unsubscribe and one presence_leave each",
    ),
];

impl Machine for SessionMachine {
    const NAME: &'static str = "session";
    type State = SessionState;
    type Event = SessionEvent;
    type Effect = SessionEffect;
    type Rejection = SessionRejection;

    fn step(
        &self,
        state: &SessionState,
        event: &SessionEvent,
    ) -> Result<Outcome, SessionRejection> {
        match (state, event) {
            (SessionState::Closed { .. }, _) => Err(SessionRejection::Closed),
            (SessionState::Connecting, SessionEvent::Upgrade { .. }) => {
                Ok(step(SessionState::Authenticating, Vec::new()))
            }
            (
                SessionState::Connecting | SessionState::Authenticating,
                SessionEvent::Drain { .. },
            ) => Ok(reject(
                503,
                RejectReason::Draining.as_str(),
                Some(1000),
                CloseReason::NotAdmitted(RejectReason::Draining),
            )),
            (
                SessionState::Connecting | SessionState::Authenticating,
                SessionEvent::SocketClosed,
            ) => Ok(step(
                SessionState::Closed {
                    reason: CloseReason::ClientGone,
                },
                Vec::new(),
            )),
            (
                SessionState::Authenticating,
                SessionEvent::TokenValid {
                    identity,
                    expires_us,
                    limits,
                    admission,
                    now_us,
                },
            ) => Ok(self.authenticated(identity, *expires_us, *limits, *admission, *now_us)),
            (SessionState::Authenticating, SessionEvent::TokenInvalid { reason }) => {
                Ok(reject(401, reason, None, CloseReason::Unauthorized(reason)))
            }
            (SessionState::Authenticating, SessionEvent::TokenExpired) => Ok(reject(
                401,
                "expired",
                None,
                CloseReason::Unauthorized("expired"),
            )),
            (SessionState::Active(live) | SessionState::Draining { live, .. }, _) => {
                self.live_event(state, live, event)
            }
            _ => Err(not_allowed(state, event)),
        }
    }

    fn state_kind(state: &SessionState) -> &'static str {
        match state {
            SessionState::Connecting => CONNECTING,
            SessionState::Authenticating => AUTHENTICATING,
            SessionState::Active(_) => ACTIVE,
            SessionState::Draining { .. } => DRAINING,
            SessionState::Closed { .. } => CLOSED,
        }
    }

    fn event_kind(event: &SessionEvent) -> &'static str {
        match event {
            SessionEvent::Upgrade { .. } => "upgrade",
            SessionEvent::TokenValid { .. } => "token_valid",
            SessionEvent::TokenInvalid { .. } => "token_invalid",
            SessionEvent::TokenExpired => "token_expired",
            SessionEvent::Join { .. } => "join",
            SessionEvent::Leave { .. } => "leave",
            SessionEvent::Publish { .. } => "publish",
            SessionEvent::TenantBudget { .. } => "tenant_budget",
            SessionEvent::PolicyVerdict { .. } => "policy_verdict",
            SessionEvent::Heartbeat { .. } => "heartbeat",
            SessionEvent::PresenceRequest { .. } => "presence_request",
            SessionEvent::Refresh { .. } => "refresh",
            SessionEvent::Tick { .. } => "tick",
            SessionEvent::SlowConsumer => "slow_consumer",
            SessionEvent::Drain { .. } => "drain",
            SessionEvent::SocketClosed => "socket_closed",
            SessionEvent::ProtocolError { .. } => "protocol_error",
        }
    }

    fn effect_kind(effect: &SessionEffect) -> &'static str {
        match effect {
            SessionEffect::RejectUpgrade { .. } => "reject_upgrade",
            SessionEffect::AcceptUpgrade => "accept_upgrade",
            SessionEffect::SendWelcome { .. } => "send_welcome",
            SessionEffect::SendError { .. } => "send_error",
            SessionEffect::SendAck { .. } => "send_ack",
            SessionEffect::SendPong { .. } => "send_pong",
            SessionEffect::SendPresence { .. } => "send_presence",
            SessionEffect::SendDrain => "send_drain",
            SessionEffect::Subscribe { .. } => "subscribe",
            SessionEffect::Unsubscribe { .. } => "unsubscribe",
            SessionEffect::ChargeTenant { .. } => "charge_tenant",
            SessionEffect::RunPolicy { .. } => "run_policy",
            SessionEffect::Publish { .. } => "publish",
            SessionEffect::PresenceJoin { .. } => "presence_join",
            SessionEffect::PresenceLeave { .. } => "presence_leave",
            SessionEffect::Close { .. } => "close",
            SessionEffect::ScheduleTick { .. } => "schedule_tick",
        }
    }

    fn state_kinds() -> &'static [&'static str] {
        &[CONNECTING, AUTHENTICATING, ACTIVE, DRAINING, CLOSED]
    }

    fn event_kinds() -> &'static [&'static str] {
        &[
            "upgrade",
            "token_valid",
            "token_invalid",
            "token_expired",
            "join",
            "leave",
            "publish",
            "tenant_budget",
            "policy_verdict",
            "heartbeat",
            "presence_request",
            "refresh",
            "tick",
            "slow_consumer",
            "drain",
            "socket_closed",
            "protocol_error",
        ]
    }

    fn transitions() -> &'static [Transition] {
        TRANSITIONS
    }

    fn invariants() -> &'static [(&'static str, &'static str)] {
        INVARIANTS
    }

    fn check_invariants(&self, state: &SessionState) -> Result<(), InvariantViolation> {
        if let Some(live) = state.live()
            && live.rooms.len() > live.limits.max_rooms as usize
        {
            return Err(InvariantViolation {
                name: "room-limit",
                detail: format!(
                    "{} rooms, limit {}",
                    live.rooms.len(),
                    live.limits.max_rooms
                ),
            });
        }
        Ok(())
    }

    fn check_step(
        &self,
        before: &SessionState,
        _event: &SessionEvent,
        after: &Outcome,
    ) -> Result<(), InvariantViolation> {
        if let (Some(old), Some(new)) = (before.live(), after.state.live())
            && old.identity != new.identity
        {
            return Err(InvariantViolation {
                name: "tenant-fixed",
                detail: format!("{:?} became {:?}", old.identity, new.identity),
            });
        }
        if matches!(before, SessionState::Closed { .. }) {
            return Err(InvariantViolation {
                name: "closed-terminal",
                detail: "an event was accepted in closed".to_owned(),
            });
        }
        if before.live().is_none()
            && let Some(routed) = after.effects.iter().find(|effect| {
                matches!(
                    effect,
                    SessionEffect::Subscribe { .. }
                        | SessionEffect::Publish { .. }
                        | SessionEffect::ChargeTenant { .. }
                        | SessionEffect::RunPolicy { .. }
                        | SessionEffect::PresenceJoin { .. }
                        | SessionEffect::PresenceLeave { .. }
                )
            })
        {
            return Err(InvariantViolation {
                name: "nothing-before-active",
                detail: format!("{} emitted {routed:?}", Self::state_kind(before)),
            });
        }
        if let (Some(old), SessionState::Closed { .. }) = (before.live(), &after.state) {
            for room in &old.rooms {
                let unsubscribed = after
                    .effects
                    .iter()
                    .filter(|e| matches!(e, SessionEffect::Unsubscribe { room: r } if r == room))
                    .count();
                let left = after
                    .effects
                    .iter()
                    .filter(|e| matches!(e, SessionEffect::PresenceLeave { room: r } if r == room))
                    .count();
                if unsubscribed != 1 || left != 1 {
                    return Err(InvariantViolation {
                        name: "closed-has-no-rooms",
                        detail: format!("room {room}: {unsubscribed} unsubscribes, {left} leaves"),
                    });
                }
            }
        }
        Ok(())
    }
}

/// The small universe exploration draws from: two tenants' users, two rooms, times in seconds.
pub mod explore {
    use super::{
        Admission, ErrorCode, Identity, PolicyVerdict, Rate, RefreshOutcome, RejectReason,
        RoomName, SessionEvent, SessionLimits, TenantId, Throttled, UserId,
    };

    /// One second, in µs.
    pub const SEC: u64 = 1_000_000;

    /// Limits used by exploration: one room, 8-byte payloads, one publish per second.
    pub const LIMITS: SessionLimits = SessionLimits {
        max_rooms: 1,
        max_payload_bytes: 8,
        publish: Rate {
            per_sec: 1,
            burst: 1,
        },
    };

    fn name<T>(parsed: Result<T, arqon_proto::names::NameError>) -> Option<T> {
        parsed.ok()
    }

    /// The identity exploration authenticates as (`acme` / `alice`, session 1).
    pub fn identity() -> Option<Identity> {
        Some(Identity {
            tenant: name(TenantId::parse("acme"))?,
            user: name(UserId::parse("alice"))?,
            session: 1,
        })
    }

    /// Every event worth trying, in a fixed order, at time `now_us`.
    #[allow(clippy::too_many_lines)]
    pub fn events(now_us: u64) -> Vec<SessionEvent> {
        let (Some(me), Some(other_tenant), Some(other_user), Some(r1), Some(r2)) = (
            identity(),
            name(TenantId::parse("beta")),
            name(UserId::parse("mallory")),
            name(RoomName::parse("r1")),
            name(RoomName::parse("r2")),
        ) else {
            return Vec::new();
        };
        let later = now_us + 3 * SEC;
        vec![
            SessionEvent::Upgrade { now_us },
            SessionEvent::TokenValid {
                identity: me.clone(),
                expires_us: now_us + 2 * SEC,
                limits: LIMITS,
                admission: Admission::Admit,
                now_us,
            },
            SessionEvent::TokenValid {
                identity: me.clone(),
                expires_us: now_us + 2 * SEC,
                limits: LIMITS,
                admission: Admission::Reject {
                    retry_after_ms: 1000,
                    reason: RejectReason::TenantFull,
                },
                now_us,
            },
            SessionEvent::TokenInvalid {
                reason: "bad_signature",
            },
            SessionEvent::TokenExpired,
            SessionEvent::Join {
                room: r1.clone(),
                request: 1,
                now_us,
            },
            SessionEvent::Join {
                room: r2.clone(),
                request: 2,
                now_us,
            },
            SessionEvent::Leave {
                room: r1.clone(),
                request: 3,
                now_us,
            },
            SessionEvent::Publish {
                room: r1.clone(),
                request: 4,
                payload_len: 4,
                now_us,
            },
            SessionEvent::Publish {
                room: r1.clone(),
                request: 5,
                payload_len: 9,
                now_us,
            },
            SessionEvent::TenantBudget {
                room: r1.clone(),
                request: 4,
                verdict: Ok(()),
                now_us,
            },
            SessionEvent::TenantBudget {
                room: r1.clone(),
                request: 4,
                verdict: Err(Throttled {
                    retry_after_ms: 1000,
                }),
                now_us,
            },
            SessionEvent::PolicyVerdict {
                room: r1.clone(),
                request: 4,
                verdict: PolicyVerdict::Allow,
                now_us,
            },
            SessionEvent::PolicyVerdict {
                room: r1,
                request: 4,
                verdict: PolicyVerdict::Block(ErrorCode::PolicyBlocked),
                now_us,
            },
            SessionEvent::Heartbeat { request: 6, now_us },
            SessionEvent::PresenceRequest {
                room: r2.clone(),
                request: 10,
                now_us,
            },
            SessionEvent::Refresh {
                outcome: RefreshOutcome::Valid {
                    tenant: me.tenant.clone(),
                    user: me.user.clone(),
                    expires_us: later,
                },
                request: 7,
                now_us,
            },
            SessionEvent::Refresh {
                outcome: RefreshOutcome::Valid {
                    tenant: other_tenant,
                    user: other_user,
                    expires_us: later,
                },
                request: 8,
                now_us,
            },
            SessionEvent::Refresh {
                outcome: RefreshOutcome::Expired,
                request: 9,
                now_us,
            },
            SessionEvent::Tick { now_us },
            SessionEvent::Tick { now_us: later },
            SessionEvent::SlowConsumer,
            SessionEvent::Drain {
                deadline_us: now_us + SEC,
            },
            SessionEvent::SocketClosed,
            SessionEvent::ProtocolError {
                code: ErrorCode::ProtocolError,
                request: None,
                now_us,
            },
            SessionEvent::ProtocolError {
                code: ErrorCode::InvalidRoom,
                request: Some(11),
                now_us,
            },
        ]
    }
}

impl Explore for SessionMachine {
    fn initial(&self) -> SessionState {
        SessionState::Connecting
    }

    /// Events at the session's own clock (its last-seen time), so the space stays small.
    fn alphabet(&self, state: &SessionState) -> Vec<SessionEvent> {
        let now_us = state.live().map_or(0, |live| live.last_seen_us);
        explore::events(now_us)
    }
}

#[cfg(test)]
mod tests;

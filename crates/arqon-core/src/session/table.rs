//! The Session machine's transition table, state and event names, invariants, and its [`Machine`]
//! implementation: the one place that dispatches an event to its transition.

use crate::limits::RejectReason;
use crate::machine::{InvariantViolation, Machine, Transition};

use super::transitions::{Outcome, not_allowed, reject, step};
use super::types::{
    CloseReason, SessionEffect, SessionEvent, SessionMachine, SessionRejection, SessionState,
};

pub(super) const CONNECTING: &str = "connecting";
pub(super) const AUTHENTICATING: &str = "authenticating";
pub(super) const ACTIVE: &str = "active";
pub(super) const DRAINING: &str = "draining";
pub(super) const CLOSED: &str = "closed";

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
        "new room below max_rooms: subscribe, then the member list after the ack; with since: subscribe holding live messages and read the history (the ack waits for the read); already in: ack; at the limit: ROOM_LIMIT",
        [
            "subscribe",
            "presence_join",
            "fetch_history",
            "send_ack",
            "send_presence",
            "send_error"
        ]
    ),
    row!(
        ACTIVE,
        "history_read",
        ACTIVE,
        "the recovering join is still pending: ack, member list, recovery and the messages read, then deliver held messages newer than the join point",
        ["send_ack", "send_presence", "send_recovery", "open_gate"]
    ),
    row!(
        ACTIVE,
        "history_request",
        ACTIVE,
        "read the room's history (the session's tenant only)",
        ["read_history"]
    ),
    row!(
        ACTIVE,
        "history_answer",
        ACTIVE,
        "read: send the page; else HISTORY_UNAVAILABLE",
        ["send_history", "send_error"]
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
        "governance",
        ACTIVE,
        "the writer answers",
        ["forward_governance"]
    ),
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
        "history_read",
        DRAINING,
        "a recovering join from before the drain finishes like in active",
        ["send_ack", "send_presence", "send_recovery", "open_gate"]
    ),
    row!(
        DRAINING,
        "history_request",
        DRAINING,
        "SERVER_DRAINING",
        ["send_error"]
    ),
    row!(
        DRAINING,
        "history_answer",
        DRAINING,
        "a read from before the drain is answered like in active",
        ["send_history", "send_error"]
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
        "governance",
        DRAINING,
        "refused: SERVER_DRAINING",
        ["send_error"]
    ),
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
        "recovering-joined",
        "a room whose history is being read for a recovering join is a joined room",
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
            SessionEvent::HistoryRead { .. } => "history_read",
            SessionEvent::HistoryRequest { .. } => "history_request",
            SessionEvent::HistoryAnswer { .. } => "history_answer",
            SessionEvent::Leave { .. } => "leave",
            SessionEvent::Publish { .. } => "publish",
            SessionEvent::TenantBudget { .. } => "tenant_budget",
            SessionEvent::PolicyVerdict { .. } => "policy_verdict",
            SessionEvent::Heartbeat { .. } => "heartbeat",
            SessionEvent::Governance { .. } => "governance",
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
            SessionEffect::ForwardGovernance { .. } => "forward_governance",
            SessionEffect::SendPresence { .. } => "send_presence",
            SessionEffect::SendDrain => "send_drain",
            SessionEffect::Subscribe { .. } => "subscribe",
            SessionEffect::FetchHistory { .. } => "fetch_history",
            SessionEffect::SendRecovery { .. } => "send_recovery",
            SessionEffect::OpenGate { .. } => "open_gate",
            SessionEffect::ReadHistory { .. } => "read_history",
            SessionEffect::SendHistory { .. } => "send_history",
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
            "history_read",
            "history_request",
            "history_answer",
            "leave",
            "publish",
            "tenant_budget",
            "policy_verdict",
            "heartbeat",
            "governance",
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
        if let Some(live) = state.live()
            && let Some(room) = live.recovering.keys().find(|r| !live.rooms.contains(*r))
        {
            return Err(InvariantViolation {
                name: "recovering-joined",
                detail: format!("room {room} is recovering but not joined"),
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
                        | SessionEffect::FetchHistory { .. }
                        | SessionEffect::ReadHistory { .. }
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
            for room in old.rooms.iter() {
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

//! The small universe exploration draws from: two tenants' users, two rooms, times in seconds.

use arqon_proto::Position;
use arqon_proto::names::{RoomName, TenantId, UserId};

use crate::history::HistoryRead;
use crate::limits::{Rate, RejectReason, Throttled, Verdict as Admission};

use crate::machine::Explore;

use super::types::{
    ErrorCode, Identity, PolicyVerdict, RefreshOutcome, SessionEvent, SessionLimits,
    SessionMachine, SessionState,
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
            since: None,
            now_us,
        },
        SessionEvent::Join {
            room: r2.clone(),
            request: 2,
            since: None,
            now_us,
        },
        SessionEvent::Join {
            room: r2.clone(),
            request: 12,
            since: Some(Position {
                offset: 3,
                epoch: "e1".to_owned(),
            }),
            now_us,
        },
        SessionEvent::HistoryRead {
            room: r2.clone(),
            request: 12,
            read: Some(HistoryRead {
                epoch: "e1".to_owned(),
                first_offset: 1,
                last_offset: 5,
                room_cap: 10,
                retained_after: 1,
                retained_total: 2,
                offsets: vec![5],
            }),
        },
        SessionEvent::HistoryRequest {
            room: r1.clone(),
            request: 13,
            now_us,
        },
        SessionEvent::HistoryAnswer {
            room: r1.clone(),
            request: 13,
            available: true,
        },
        SessionEvent::HistoryAnswer {
            room: r1.clone(),
            request: 13,
            available: false,
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
        SessionEvent::Governance {
            request: 12,
            now_us,
        },
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

impl Explore for SessionMachine {
    fn initial(&self) -> SessionState {
        SessionState::Connecting
    }

    /// Events at the session's own clock (its last-seen time), so the space stays small.
    fn alphabet(&self, state: &SessionState) -> Vec<SessionEvent> {
        let now_us = state.live().map_or(0, |live| live.last_seen_us);
        events(now_us)
    }
}

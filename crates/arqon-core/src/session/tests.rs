//! Unit tests of the Session machine: one per table row at least, named by AC.

use std::collections::BTreeSet;

use super::explore::{LIMITS, SEC};
use arqon_proto::names::{RoomName, TenantId, UserId};

use super::table::*;
use super::transitions::*;
use super::*;
use crate::limits::{Rate, RejectReason, Throttled, Verdict as Admission};
use crate::machine::{Explore, Machine};
use crate::machine::{checked_step, row_for};

fn machine() -> SessionMachine {
    SessionMachine {
        config: SessionConfig {
            heartbeat_timeout_us: 10 * SEC,
            heartbeat_interval_ms: 5_000,
            max_protocol_errors: 2,
            slow_consumer_threshold: 2,
        },
    }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn me() -> Identity {
    explore::identity().unwrap()
}

/// Steps through the checked path (table row + invariants) and returns the outcome.
#[allow(clippy::needless_pass_by_value)]
fn run(state: &SessionState, event: SessionEvent) -> Outcome {
    checked_step(&machine(), state, &event)
        .unwrap()
        .unwrap_or_else(|| panic!("{event:?} refused in {state:?}"))
}

fn kinds(outcome: &Outcome) -> Vec<&'static str> {
    outcome
        .effects
        .iter()
        .map(SessionMachine::effect_kind)
        .collect()
}

fn limits(max_rooms: u32) -> SessionLimits {
    SessionLimits {
        max_rooms,
        max_payload_bytes: 16,
        publish: Rate {
            per_sec: 1,
            burst: 2,
        },
    }
}

/// An active session authenticated at 0 with a token valid for 100 s.
fn active_with(limits: SessionLimits) -> SessionState {
    let authenticating = run(
        &SessionState::Connecting,
        SessionEvent::Upgrade { now_us: 0 },
    )
    .state;
    run(
        &authenticating,
        SessionEvent::TokenValid {
            identity: me(),
            expires_us: 100 * SEC,
            limits,
            admission: Admission::Admit,
            now_us: 0,
        },
    )
    .state
}

fn active() -> SessionState {
    active_with(limits(2))
}

fn joined(rooms: &[&str]) -> SessionState {
    let mut state = active();
    for (i, name) in rooms.iter().enumerate() {
        state = run(
            &state,
            SessionEvent::Join {
                room: room(name),
                request: i as u64,
                since: None,
                now_us: 0,
            },
        )
        .state;
    }
    state
}

fn publish(name: &str, len: u32, now_us: u64) -> SessionEvent {
    SessionEvent::Publish {
        room: room(name),
        request: 9,
        payload_len: len,
        now_us,
    }
}

fn tenant_budget(name: &str, verdict: Result<(), Throttled>) -> SessionEvent {
    SessionEvent::TenantBudget {
        room: room(name),
        request: 9,
        verdict,
        now_us: 0,
    }
}

fn draining(state: &SessionState) -> SessionState {
    run(
        state,
        SessionEvent::Drain {
            deadline_us: 5 * SEC,
        },
    )
    .state
}

// AC-SESSION-1
#[test]
fn ac_session_1_valid_token_activates_with_welcome_and_tick() {
    let authenticating = run(
        &SessionState::Connecting,
        SessionEvent::Upgrade { now_us: 0 },
    );
    assert_eq!(authenticating.state, SessionState::Authenticating);
    assert!(authenticating.effects.is_empty());
    let out = run(
        &authenticating.state,
        SessionEvent::TokenValid {
            identity: me(),
            expires_us: 100 * SEC,
            limits: limits(2),
            admission: Admission::Admit,
            now_us: 0,
        },
    );
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::AcceptUpgrade,
            SessionEffect::SendWelcome {
                heartbeat_interval_ms: 5_000
            },
            SessionEffect::ScheduleTick { at_us: 10 * SEC },
        ]
    );
    assert_eq!(out.state.live().unwrap().identity, me());
}

// AC-SESSION-2
#[test]
fn ac_session_2_invalid_or_expired_token_is_401() {
    let out = run(
        &SessionState::Authenticating,
        SessionEvent::TokenInvalid {
            reason: "bad_signature",
        },
    );
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::Unauthorized("bad_signature")
        }
    );
    assert_eq!(
        out.effects,
        vec![SessionEffect::RejectUpgrade {
            status: 401,
            reason: "bad_signature",
            retry_after_ms: None
        }]
    );
    let out = run(&SessionState::Authenticating, SessionEvent::TokenExpired);
    assert_eq!(
        out.effects,
        vec![SessionEffect::RejectUpgrade {
            status: 401,
            reason: "expired",
            retry_after_ms: None
        }]
    );
    // A "valid" token already past exp is refused all the same.
    let out = run(
        &SessionState::Authenticating,
        SessionEvent::TokenValid {
            identity: me(),
            expires_us: 5,
            limits: LIMITS,
            admission: Admission::Admit,
            now_us: 5,
        },
    );
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::Unauthorized("expired")
        }
    );
}

// AC-SESSION-3
#[test]
fn ac_session_3_connection_cap_is_503_with_retry_after() {
    let out = run(
        &SessionState::Authenticating,
        SessionEvent::TokenValid {
            identity: me(),
            expires_us: 100 * SEC,
            limits: LIMITS,
            admission: Admission::Reject {
                retry_after_ms: 750,
                reason: RejectReason::UserFull,
            },
            now_us: 0,
        },
    );
    assert_eq!(
        out.effects,
        vec![SessionEffect::RejectUpgrade {
            status: 503,
            reason: "user_full",
            retry_after_ms: Some(750)
        }]
    );
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::NotAdmitted(RejectReason::UserFull)
        }
    );
}

#[test]
fn connecting_and_authenticating_close_on_drain_and_socket_closed() {
    for state in [SessionState::Connecting, SessionState::Authenticating] {
        let out = run(&state, SessionEvent::Drain { deadline_us: 1 });
        assert_eq!(kinds(&out), ["reject_upgrade"]);
        let out = run(&state, SessionEvent::SocketClosed);
        assert_eq!(
            out.state,
            SessionState::Closed {
                reason: CloseReason::ClientGone
            }
        );
        assert!(out.effects.is_empty());
    }
}

// AC-SESSION-4
#[test]
fn ac_session_4_join_subscribes_until_the_room_limit() {
    let out = run(
        &active(),
        SessionEvent::Join {
            room: room("a"),
            request: 1,
            since: None,
            now_us: SEC,
        },
    );
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::Subscribe {
                room: room("a"),
                gated: false,
            },
            SessionEffect::PresenceJoin { room: room("a") },
            SessionEffect::SendAck { request: 1 },
            SessionEffect::SendPresence {
                room: room("a"),
                request: 1,
                full: true,
            },
        ]
    );
    // Joining again is idempotent: just an ack.
    let again = run(
        &out.state,
        SessionEvent::Join {
            room: room("a"),
            request: 2,
            since: None,
            now_us: SEC,
        },
    );
    assert_eq!(again.effects, vec![SessionEffect::SendAck { request: 2 }]);
    let full = joined(&["a", "b"]);
    let out = run(
        &full,
        SessionEvent::Join {
            room: room("c"),
            request: 3,
            since: None,
            now_us: SEC,
        },
    );
    assert_eq!(out.effects, vec![error(ErrorCode::RoomLimit, Some(3))]);
    assert_eq!(
        *out.state.live().unwrap().rooms,
        BTreeSet::from([room("a"), room("b")])
    );
}

#[test]
fn leave_unsubscribes_or_reports_not_in_room() {
    let out = run(
        &joined(&["a"]),
        SessionEvent::Leave {
            room: room("a"),
            request: 4,
            now_us: 0,
        },
    );
    assert_eq!(kinds(&out), ["unsubscribe", "presence_leave", "send_ack"]);
    let out = run(
        &out.state,
        SessionEvent::Leave {
            room: room("a"),
            request: 5,
            now_us: 0,
        },
    );
    assert_eq!(out.effects, vec![error(ErrorCode::NotInRoom, Some(5))]);
}

// AC-SESSION-5
#[test]
fn ac_session_5_publish_runs_policy_then_publishes_stamped_or_blocks() {
    let out = run(&joined(&["a"]), publish("a", 3, 2 * SEC));
    assert_eq!(
        out.effects,
        vec![SessionEffect::ChargeTenant {
            room: room("a"),
            request: 9
        }]
    );
    let out = run(&out.state, tenant_budget("a", Ok(())));
    assert_eq!(
        out.effects,
        vec![SessionEffect::RunPolicy {
            room: room("a"),
            request: 9
        }]
    );
    let allowed = run(
        &out.state,
        SessionEvent::PolicyVerdict {
            room: room("a"),
            request: 9,
            verdict: PolicyVerdict::Allow,
            now_us: 3 * SEC,
        },
    );
    let stamp = Stamp {
        tenant: me().tenant,
        sender: me().user,
        session: 1,
        timestamp_us: 3 * SEC,
        default_twist_id: "0000000000000001-1".to_owned(),
    };
    assert_eq!(
        allowed.effects,
        vec![
            SessionEffect::Publish {
                room: room("a"),
                request: 9,
                stamp
            },
            SessionEffect::SendAck { request: 9 },
        ]
    );
    let blocked = run(
        &out.state,
        SessionEvent::PolicyVerdict {
            room: room("a"),
            request: 9,
            verdict: PolicyVerdict::Block(ErrorCode::PolicyTrap),
            now_us: 3 * SEC,
        },
    );
    assert_eq!(blocked.effects, vec![error(ErrorCode::PolicyTrap, Some(9))]);
    // A verdict for a room the session left meanwhile is not routed.
    let left = run(
        &out.state,
        SessionEvent::Leave {
            room: room("a"),
            request: 1,
            now_us: 0,
        },
    )
    .state;
    let late = run(
        &left,
        SessionEvent::PolicyVerdict {
            room: room("a"),
            request: 9,
            verdict: PolicyVerdict::Allow,
            now_us: 0,
        },
    );
    assert_eq!(late.effects, vec![error(ErrorCode::NotInRoom, Some(9))]);
}

// AC-SESSION-6
#[test]
fn ac_session_6_publish_refusals_route_nothing() {
    let state = joined(&["a"]);
    let out = run(&state, publish("b", 3, 0));
    assert_eq!(out.effects, vec![error(ErrorCode::NotInRoom, Some(9))]);
    let out = run(&state, publish("a", 17, 0));
    assert_eq!(
        out.effects,
        vec![error(ErrorCode::PayloadTooLarge, Some(9))]
    );
    let out = run(
        &state,
        tenant_budget("a", Err(Throttled { retry_after_ms: 40 })),
    );
    assert_eq!(
        out.effects,
        vec![SessionEffect::SendError {
            code: ErrorCode::RateLimited,
            request: Some(9),
            retry_after_ms: Some(40)
        }]
    );
    // The connection bucket: burst 2 at 1/s.
    let mut state = state;
    for _ in 0..2 {
        state = run(&state, publish("a", 1, 0)).state;
    }
    let out = run(&state, publish("a", 1, 0));
    assert_eq!(
        out.effects,
        vec![SessionEffect::SendError {
            code: ErrorCode::RateLimited,
            request: Some(9),
            retry_after_ms: Some(1000)
        }]
    );
    let out = run(&out.state, publish("a", 1, SEC));
    assert_eq!(kinds(&out), ["charge_tenant"]);
}

// AC-SESSION-16
#[test]
fn ac_session_16_only_publishes_that_pass_the_session_checks_charge_the_tenant() {
    let state = joined(&["a"]);
    let charges = |state: &SessionState, event: SessionEvent| {
        run(state, event)
            .effects
            .iter()
            .filter(|effect| matches!(effect, SessionEffect::ChargeTenant { .. }))
            .count()
    };
    // Refused by the session's own checks: the tenant is not charged.
    assert_eq!(charges(&state, publish("b", 1, 0)), 0);
    assert_eq!(charges(&state, publish("a", 17, 0)), 0);
    assert_eq!(charges(&draining(&state), publish("a", 1, 0)), 0);
    let mut spent = state.clone();
    for _ in 0..2 {
        spent = run(&spent, publish("a", 1, 0)).state;
    }
    assert_eq!(charges(&spent, publish("a", 1, 0)), 0);
    // Passed them: exactly one charge, and policy runs only once the tenant gave a token.
    assert_eq!(charges(&state, publish("a", 1, 0)), 1);
    let throttled = run(
        &state,
        tenant_budget("a", Err(Throttled { retry_after_ms: 5 })),
    );
    assert_eq!(kinds(&throttled), ["send_error"]);
    // A budget answer for a room left meanwhile routes nothing.
    let left = run(
        &state,
        SessionEvent::Leave {
            room: room("a"),
            request: 1,
            now_us: 0,
        },
    )
    .state;
    let late = run(&left, tenant_budget("a", Ok(())));
    assert_eq!(late.effects, vec![error(ErrorCode::NotInRoom, Some(9))]);
}

// AC-SESSION-7
#[test]
fn ac_session_7_refresh_extends_or_refuses_or_closes() {
    let state = joined(&["a"]);
    let valid = |tenant: &str, user: &str, exp: u64| RefreshOutcome::Valid {
        tenant: TenantId::parse(tenant).unwrap(),
        user: UserId::parse(user).unwrap(),
        expires_us: exp,
    };
    let out = run(
        &state,
        SessionEvent::Refresh {
            outcome: valid("acme", "alice", 200 * SEC),
            request: 1,
            now_us: 50 * SEC,
        },
    );
    assert_eq!(out.state.live().unwrap().token_expires_us, 200 * SEC);
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::SendAck { request: 1 },
            SessionEffect::ScheduleTick { at_us: 60 * SEC }
        ]
    );
    for (outcome, code) in [
        (RefreshOutcome::Expired, ErrorCode::TokenExpired),
        (
            RefreshOutcome::Invalid("bad_signature"),
            ErrorCode::TokenInvalid,
        ),
        // A valid token whose exp is already behind the session's clock is an expired refresh.
        (valid("acme", "alice", 50 * SEC), ErrorCode::TokenExpired),
    ] {
        let out = run(
            &state,
            SessionEvent::Refresh {
                outcome,
                request: 2,
                now_us: 50 * SEC,
            },
        );
        assert_eq!(out.effects, vec![error(code, Some(2))]);
        assert_eq!(out.state.live().unwrap().token_expires_us, 100 * SEC);
    }
    for outcome in [
        valid("acme", "mallory", 200 * SEC),
        valid("beta", "alice", 200 * SEC),
    ] {
        let out = run(
            &state,
            SessionEvent::Refresh {
                outcome,
                request: 3,
                now_us: 50 * SEC,
            },
        );
        assert_eq!(
            out.state,
            SessionState::Closed {
                reason: CloseReason::Forbidden
            }
        );
        assert_eq!(kinds(&out), ["unsubscribe", "presence_leave", "close"]);
        assert_eq!(
            out.effects.last(),
            Some(&SessionEffect::Close { code: 4003 })
        );
    }
    // A shorter refresh never shortens the session.
    let out = run(
        &state,
        SessionEvent::Refresh {
            outcome: valid("acme", "alice", 80 * SEC),
            request: 4,
            now_us: SEC,
        },
    );
    assert_eq!(out.state.live().unwrap().token_expires_us, 100 * SEC);
}

// AC-SESSION-8
#[test]
fn ac_session_8_token_expiry_closes_and_leaves_rooms() {
    let mut state = joined(&["a"]);
    // Keep it alive with heartbeats right up to expiry.
    for t in [9, 18, 27, 36, 45, 54, 63, 72, 81, 90, 99] {
        state = run(
            &state,
            SessionEvent::Heartbeat {
                request: t,
                now_us: t * SEC,
            },
        )
        .state;
    }
    let out = run(&state, SessionEvent::Tick { now_us: 99 * SEC });
    assert_eq!(
        out.effects,
        vec![SessionEffect::ScheduleTick { at_us: 100 * SEC }]
    );
    let out = run(&out.state, SessionEvent::Tick { now_us: 100 * SEC });
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::TokenExpired
        }
    );
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::Unsubscribe { room: room("a") },
            SessionEffect::PresenceLeave { room: room("a") },
            SessionEffect::Close { code: 4001 },
        ]
    );
}

// AC-SESSION-9
#[test]
fn ac_session_9_heartbeat_timeout_closes_and_heartbeat_moves_the_deadline() {
    let state = active();
    let out = run(
        &state,
        SessionEvent::Heartbeat {
            request: 7,
            now_us: 8 * SEC,
        },
    );
    assert_eq!(out.effects, vec![SessionEffect::SendPong { request: 7 }]);
    let tick = run(&out.state, SessionEvent::Tick { now_us: 10 * SEC });
    assert_eq!(
        tick.effects,
        vec![SessionEffect::ScheduleTick { at_us: 18 * SEC }]
    );
    let out = run(&tick.state, SessionEvent::Tick { now_us: 18 * SEC });
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::HeartbeatTimeout
        }
    );
    assert_eq!(out.effects, vec![SessionEffect::Close { code: 4005 }]);
}

// AC-SESSION-10
#[test]
fn ac_session_10_protocol_errors_past_the_budget_close() {
    let mut state = joined(&["a"]);
    let bad = SessionEvent::ProtocolError {
        code: ErrorCode::ProtocolError,
        request: None,
        now_us: 0,
    };
    for _ in 0..2 {
        let out = run(&state, bad.clone());
        assert_eq!(out.effects, vec![error(ErrorCode::ProtocolError, None)]);
        state = out.state;
    }
    let out = run(&state, bad);
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::ProtocolErrors
        }
    );
    assert_eq!(
        out.effects.last(),
        Some(&SessionEffect::Close { code: 4000 })
    );
    let out = run(
        &active(),
        SessionEvent::ProtocolError {
            code: ErrorCode::FrameTooLarge,
            request: None,
            now_us: 0,
        },
    );
    assert_eq!(out.effects, vec![SessionEffect::Close { code: 4008 }]);
    // A bad room or too large a payload is a refused request, not a broken protocol.
    let mut state = joined(&["a"]);
    for (request, code) in
        (1..10).zip([ErrorCode::InvalidRoom, ErrorCode::PayloadTooLarge].repeat(5))
    {
        let out = run(
            &state,
            SessionEvent::ProtocolError {
                code,
                request: Some(request),
                now_us: 0,
            },
        );
        assert_eq!(out.effects, vec![error(code, Some(request))]);
        state = out.state;
    }
    assert_eq!(state.live().map(|live| live.protocol_errors), Some(0));
}

// AC-SESSION-17: a refusal answers its request whenever the frame's header could be read.
#[test]
fn ac_session_17_decode_time_refusals_answer_their_request() {
    let codes = [
        ErrorCode::InvalidRoom,
        ErrorCode::TextFrame,
        ErrorCode::ProtocolError,
        ErrorCode::UnsupportedVersion,
        ErrorCode::PayloadTooLarge,
    ];
    for state in [joined(&["a"]), draining(&joined(&["a"]))] {
        for (request, code) in (40..).zip(codes) {
            for correlated in [Some(request), None] {
                let out = run(
                    &state,
                    SessionEvent::ProtocolError {
                        code,
                        request: correlated,
                        now_us: SEC,
                    },
                );
                assert_eq!(out.effects, vec![error(code, correlated)], "{code:?}");
            }
        }
    }
}

// AC-SESSION-11
#[test]
fn ac_session_11_slow_consumer_past_threshold_closes() {
    let mut state = joined(&["a"]);
    for _ in 0..2 {
        let out = run(&state, SessionEvent::SlowConsumer);
        assert!(out.effects.is_empty());
        state = out.state;
    }
    let out = run(&state, SessionEvent::SlowConsumer);
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::SlowConsumer
        }
    );
    assert_eq!(
        out.effects.last(),
        Some(&SessionEffect::Close { code: 4006 })
    );
    let drain = draining(&joined(&["a"]));
    let mut state = drain;
    for _ in 0..3 {
        state = run(&state, SessionEvent::SlowConsumer).state;
    }
    assert_eq!(
        state,
        SessionState::Closed {
            reason: CloseReason::SlowConsumer
        }
    );
}

// AC-SESSION-12
#[test]
#[allow(clippy::too_many_lines)]
fn ac_session_12_drain_tells_the_client_refuses_work_and_closes_at_deadline() {
    let state = joined(&["a"]);
    let out = run(
        &state,
        SessionEvent::Drain {
            deadline_us: 5 * SEC,
        },
    );
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::SendDrain,
            SessionEffect::ScheduleTick { at_us: 5 * SEC }
        ]
    );
    let drain = out.state;
    assert_eq!(
        machine()
            .step(&drain, &SessionEvent::Drain { deadline_us: 1 })
            .unwrap_err(),
        not_allowed(&drain, &SessionEvent::Drain { deadline_us: 1 })
    );
    for event in [
        SessionEvent::Join {
            room: room("b"),
            request: 1,
            since: None,
            now_us: SEC,
        },
        publish("a", 1, SEC),
        SessionEvent::Refresh {
            outcome: RefreshOutcome::Expired,
            request: 1,
            now_us: SEC,
        },
    ] {
        let out = run(&drain, event);
        assert_eq!(kinds(&out), ["send_error"]);
        assert!(matches!(
            out.effects[0],
            SessionEffect::SendError {
                code: ErrorCode::ServerDraining,
                ..
            }
        ));
    }
    // In-flight publishes are still flushed; heartbeats answered; leave works.
    let out = run(
        &drain,
        SessionEvent::PolicyVerdict {
            room: room("a"),
            request: 2,
            verdict: PolicyVerdict::Allow,
            now_us: SEC,
        },
    );
    assert_eq!(kinds(&out), ["publish", "send_ack"]);
    assert_eq!(
        kinds(&run(
            &drain,
            SessionEvent::Heartbeat {
                request: 3,
                now_us: SEC
            }
        )),
        ["send_pong"]
    );
    assert_eq!(
        kinds(&run(
            &drain,
            SessionEvent::Leave {
                room: room("a"),
                request: 4,
                now_us: SEC
            }
        )),
        ["unsubscribe", "presence_leave", "send_ack"]
    );
    assert_eq!(
        kinds(&run(
            &drain,
            SessionEvent::ProtocolError {
                code: ErrorCode::TextFrame,
                request: None,
                now_us: SEC
            }
        )),
        ["send_error"]
    );
    let out = run(&drain, SessionEvent::Tick { now_us: 4 * SEC });
    assert_eq!(
        out.effects,
        vec![SessionEffect::ScheduleTick { at_us: 5 * SEC }]
    );
    let out = run(&drain, SessionEvent::Tick { now_us: 5 * SEC });
    assert_eq!(
        out.state,
        SessionState::Closed {
            reason: CloseReason::Drained
        }
    );
    assert_eq!(
        out.effects.last(),
        Some(&SessionEffect::Close { code: 4007 })
    );
    let out = run(&drain, SessionEvent::SocketClosed);
    assert_eq!(kinds(&out), ["unsubscribe", "presence_leave"]);
    let mut state = drain;
    for _ in 0..3 {
        state = run(
            &state,
            SessionEvent::ProtocolError {
                code: ErrorCode::ProtocolError,
                request: None,
                now_us: SEC,
            },
        )
        .state;
    }
    assert_eq!(
        state,
        SessionState::Closed {
            reason: CloseReason::ProtocolErrors
        }
    );
}

// AC-SESSION-13
#[test]
fn ac_session_13_closed_is_terminal() {
    let closed = run(&joined(&["a"]), SessionEvent::SocketClosed).state;
    for event in explore::events(0) {
        assert_eq!(
            machine().step(&closed, &event),
            Err(SessionRejection::Closed)
        );
    }
}

// AC-SESSION-15
#[test]
fn ac_session_15_events_out_of_place_are_typed_rejections() {
    let cases = [
        (
            SessionState::Connecting,
            SessionEvent::Join {
                room: room("a"),
                request: 1,
                since: None,
                now_us: 0,
            },
        ),
        (SessionState::Connecting, SessionEvent::TokenExpired),
        (
            SessionState::Authenticating,
            SessionEvent::Upgrade { now_us: 0 },
        ),
        (SessionState::Authenticating, publish("a", 1, 0)),
        (active(), SessionEvent::Upgrade { now_us: 0 }),
        (active(), SessionEvent::TokenInvalid { reason: "x" }),
    ];
    for (state, event) in cases {
        let refused = machine().step(&state, &event).unwrap_err();
        assert_eq!(
            refused,
            SessionRejection::NotAllowed {
                state: SessionMachine::state_kind(&state),
                event: SessionMachine::event_kind(&event)
            }
        );
    }
}

fn every_row_hit_by(
    mut visit: impl FnMut(&mut dyn FnMut(&SessionState, &SessionEvent)),
) -> BTreeSet<(&'static str, &'static str, &'static str)> {
    let mut hit = BTreeSet::new();
    visit(&mut |state, event| {
        if let Ok(out) = machine().step(state, event) {
            let row = row_for::<SessionMachine>(state, event, &out.state).unwrap();
            hit.insert((row.from, row.event, row.to));
        }
    });
    hit
}

// AC-SESSION-14
#[test]
fn ac_session_14_exhaustive_exploration_keeps_invariants_and_covers_the_table() {
    let m = SessionMachine {
        config: SessionConfig {
            max_protocol_errors: 1,
            slow_consumer_threshold: 1,
            ..machine().config
        },
    };
    let mut frontier = vec![m.initial()];
    let mut seen: std::collections::HashSet<SessionState> = frontier.iter().cloned().collect();
    let mut covered = BTreeSet::new();
    for _depth in 0..7 {
        let mut next = Vec::new();
        for state in &frontier {
            for event in m.alphabet(state) {
                if let Some(out) = checked_step(&m, state, &event).unwrap() {
                    let row = row_for::<SessionMachine>(state, &event, &out.state).unwrap();
                    covered.insert((row.from, row.event, row.to));
                    if seen.insert(out.state.clone()) {
                        next.push(out.state);
                    }
                }
            }
        }
        frontier = next;
    }
    // Rows the small alphabet cannot reach within the bound are covered by the unit tests above.
    let hit_by_units = every_row_hit_by(|visit| {
        let drain = draining(&joined(&["a"]));
        visit(&drain, &SessionEvent::Tick { now_us: 5 * SEC });
        visit(&joined(&["a"]), &SessionEvent::Tick { now_us: 100 * SEC });
    });
    covered.extend(hit_by_units);
    let all: BTreeSet<_> = SessionMachine::transitions()
        .iter()
        .map(|r| (r.from, r.event, r.to))
        .collect();
    let missing: Vec<_> = all.difference(&covered).collect();
    assert!(missing.is_empty(), "rows never taken: {missing:?}");
    assert!(seen.len() > 20, "explored only {} states", seen.len());
}

// AC-SESSION-14
#[test]
fn ac_session_14_random_walks_keep_every_invariant() {
    use rand::{Rng, SeedableRng};
    let m = machine();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5e55_1011);
    for _walk in 0..300 {
        let mut state = m.initial();
        let mut now = 0;
        for _ in 0..40 {
            now += rng.gen_range(0..4 * SEC);
            let events = explore::events(now);
            let event = &events[rng.gen_range(0..events.len())];
            if let Some(out) = checked_step(&m, &state, event).unwrap() {
                state = out.state;
            } else {
                assert!(m.step(&state, event).is_err());
            }
        }
    }
}

#[test]
fn table_is_well_formed() {
    let states = SessionMachine::state_kinds();
    let events = SessionMachine::event_kinds();
    let mut pairs = BTreeSet::new();
    for row in SessionMachine::transitions() {
        assert!(
            states.contains(&row.from) && states.contains(&row.to),
            "{row:?}"
        );
        assert!(events.contains(&row.event), "{row:?}");
        assert!(
            pairs.insert((row.from, row.event, row.to)),
            "duplicate row {row:?}"
        );
    }
    assert!(
        SessionMachine::transitions()
            .iter()
            .all(|r| r.from != CLOSED)
    );
}

// AC-HISTORY-7: a join with `since` subscribes holding live messages and reads the history; the
// ack, the member list, the recovery and the gate follow the read; a leave before the read drops it.
#[test]
fn ac_history_7_a_recovering_join_is_answered_at_the_read_point() {
    let since = arqon_proto::Position {
        offset: 7,
        epoch: "e1".to_owned(),
    };
    let join = SessionEvent::Join {
        room: room("a"),
        request: 3,
        since: Some(since),
        now_us: SEC,
    };
    let out = run(&active(), join);
    assert_eq!(
        out.effects,
        vec![
            SessionEffect::Subscribe {
                room: room("a"),
                gated: true,
            },
            SessionEffect::PresenceJoin { room: room("a") },
            SessionEffect::FetchHistory {
                room: room("a"),
                request: 3,
                after: 7,
            },
        ]
    );
    let read = crate::history::HistoryRead {
        epoch: "e1".to_owned(),
        first_offset: 1,
        last_offset: 12,
        room_cap: 100,
        retained_after: 2,
        retained_total: 5,
        offsets: vec![9, 11],
    };
    let answered = run(
        &out.state,
        SessionEvent::HistoryRead {
            room: room("a"),
            request: 3,
            read: Some(read.clone()),
        },
    );
    assert_eq!(
        kinds(&answered),
        ["send_ack", "send_presence", "send_recovery", "open_gate"]
    );
    assert!(answered.effects.contains(&SessionEffect::OpenGate {
        room: room("a"),
        after: 12
    }));
    assert!(answered.state.live().unwrap().recovering.is_empty());
    // A read that arrives after the room was left changes nothing.
    let left = run(
        &out.state,
        SessionEvent::Leave {
            room: room("a"),
            request: 4,
            now_us: SEC,
        },
    );
    let late = run(
        &left.state,
        SessionEvent::HistoryRead {
            room: room("a"),
            request: 3,
            read: Some(read),
        },
    );
    assert!(late.effects.is_empty());
}

// AC-SESSION-18
#[test]
fn ac_session_18_a_governance_body_is_forwarded_unanswered_and_refused_while_draining() {
    let active = active();
    let forwarded = run(
        &active,
        SessionEvent::Governance {
            request: 7,
            now_us: SEC,
        },
    );
    // No ack and no pong: the writer's answer is the request's only reply.
    assert_eq!(
        forwarded.effects,
        vec![SessionEffect::ForwardGovernance { request: 7 }]
    );
    let refused = run(
        &draining(&active),
        SessionEvent::Governance {
            request: 8,
            now_us: SEC,
        },
    );
    assert!(matches!(
        refused.effects[..],
        [SessionEffect::SendError {
            code: ErrorCode::ServerDraining,
            request: Some(8),
            ..
        }]
    ));
}

#[test]
fn the_twist_id_is_the_padded_hex_format_of_session_and_count() {
    // Edge values, then a fixed-seed walk (xorshift) over the whole range.
    let mut values = vec![
        0,
        1,
        0xf,
        0x10,
        0xff,
        u64::from(u32::MAX),
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        values.push(x >> (x % 64));
    }
    for (i, &session) in values.iter().enumerate() {
        let published = values[(i * 7 + 3) % values.len()];
        assert_eq!(
            twist_id(session, published),
            format!("{session:016x}-{published:x}")
        );
    }
}

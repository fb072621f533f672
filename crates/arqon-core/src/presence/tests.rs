//! Unit tests of the presence machine, one per acceptance criterion of `specs/presence.md`.

use arqon_proto::names::{RoomName, TenantId, UserId};

use super::explore::{node, session};
use super::{
    DeltaOp, NodeId, Presence, PresenceConfig, PresenceEffect, PresenceEvent, PresenceRejection,
    PresenceState, Replication,
};
use crate::machine::{Machine, checked_step};

const TTL: u64 = 10_000_000;

fn machine() -> Presence {
    Presence::new(PresenceConfig { node_ttl_us: TTL })
}

fn tenant(name: &str) -> TenantId {
    TenantId::parse(name).unwrap()
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

fn state_on(id: &str) -> PresenceState {
    PresenceState::new(tenant("acme"), node(id, 1))
}

fn join(room_name: &str, id: &str, now_us: u64) -> PresenceEvent {
    PresenceEvent::Join {
        room: room(room_name),
        session: session(id),
        user: UserId::parse(&format!("user-{id}")).unwrap(),
        meta: None,
        now_us,
    }
}

/// Applies `event` with every invariant checked; panics on a refusal or a violation.
fn apply(state: &PresenceState, event: &PresenceEvent) -> (PresenceState, Vec<PresenceEffect>) {
    let step = checked_step(&machine(), state, event).unwrap().unwrap();
    (step.state, step.effects)
}

fn received(msg: Replication, now_us: u64) -> PresenceEvent {
    PresenceEvent::Received { msg, now_us }
}

/// The replication messages among `effects`.
fn outgoing(effects: &[PresenceEffect]) -> Vec<Replication> {
    effects
        .iter()
        .filter_map(|e| match e {
            PresenceEffect::Broadcast(msg) | PresenceEffect::SendTo { msg, .. } => {
                Some(msg.clone())
            }
            _ => None,
        })
        .collect()
}

fn count(effects: &[PresenceEffect], kind: &str) -> usize {
    effects
        .iter()
        .filter(|e| Presence::effect_kind(e) == kind)
        .count()
}

// AC-PRESENCE-1
#[test]
fn join_reports_the_newcomer_and_broadcasts_the_next_delta() {
    let (a, effects) = apply(&state_on("a"), &join("lobby", "s1", 5));
    assert_eq!(count(&effects, "presence_update"), 1);
    let sent = outgoing(&effects);
    let [Replication::Delta { seq, op, .. }] = sent.as_slice() else {
        panic!("expected one delta, got {effects:?}");
    };
    assert_eq!(*seq, 1);
    assert!(matches!(op, DeltaOp::Join { .. }));
    assert_eq!(a.member_count(&room("lobby")), 1);
    assert_eq!(
        machine().step(&a, &join("lobby", "s1", 6)),
        Err(PresenceRejection::AlreadyJoined)
    );
}

// AC-PRESENCE-2
#[test]
fn a_replicated_leave_is_reported_once_and_its_duplicate_not_at_all() {
    let (b, effects) = apply(&state_on("b"), &join("lobby", "s1", 1));
    let join_delta = outgoing(&effects).remove(0);
    let (a, effects) = apply(&state_on("a"), &received(join_delta, 1));
    assert_eq!(count(&effects, "presence_update"), 1);
    let (_, effects) = apply(
        &b,
        &PresenceEvent::Leave {
            room: room("lobby"),
            session: session("s1"),
            now_us: 2,
        },
    );
    let leave_delta = outgoing(&effects).remove(0);
    let (a, effects) = apply(&a, &received(leave_delta.clone(), 2));
    assert_eq!(count(&effects, "presence_leave"), 1);
    let (a, effects) = apply(&a, &received(leave_delta, 3));
    assert!(effects.is_empty(), "{effects:?}");
    assert!(!a.has_room(&room("lobby")));
}

// AC-PRESENCE-3
#[test]
fn a_gap_asks_for_a_sync_and_the_sync_converges() {
    let mut b = state_on("b");
    let mut deltas = Vec::new();
    for (i, id) in ["s1", "s2", "s3"].into_iter().enumerate() {
        let (next, effects) = apply(&b, &join("lobby", id, i as u64));
        b = next;
        deltas.extend(outgoing(&effects));
    }
    let (a, effects) = apply(&state_on("a"), &received(deltas[0].clone(), 1));
    assert_eq!(count(&effects, "presence_update"), 1);
    // The second delta is lost; the third shows the gap.
    let (a, effects) = apply(&a, &received(deltas[2].clone(), 2));
    let [PresenceEffect::SendTo { to, msg }] = effects.as_slice() else {
        panic!("expected a sync request, got {effects:?}");
    };
    assert_eq!(to, &NodeId("b".to_owned()));
    let (_, effects) = apply(&b, &received(msg.clone(), 3));
    let reply = outgoing(&effects).remove(0);
    let (a, effects) = apply(&a, &received(reply, 4));
    assert_eq!(count(&effects, "presence_update"), 2);
    assert_eq!(a.member_count(&room("lobby")), 3);
    assert_eq!(a.replicas()[&NodeId("b".to_owned())].rooms, *b.local());
    // A heartbeat at the same seq asks for nothing.
    let heartbeat = Replication::Heartbeat {
        tenant: tenant("acme"),
        from: node("b", 1),
        seq: b.seq(),
    };
    let (_, effects) = apply(&a, &received(heartbeat, 5));
    assert!(effects.is_empty(), "{effects:?}");
}

// AC-PRESENCE-4
#[test]
fn a_silent_node_expires_on_tick_with_one_leave_per_member() {
    let mut b = state_on("b");
    let mut a = state_on("a");
    for id in ["s1", "s2"] {
        let (next, effects) = apply(&b, &join("lobby", id, 0));
        b = next;
        a = apply(&a, &received(outgoing(&effects).remove(0), 0)).0;
    }
    let (a, effects) = apply(&a, &PresenceEvent::Tick { now_us: TTL });
    assert_eq!(count(&effects, "presence_leave"), 0, "not yet expired");
    let (a, effects) = apply(&a, &PresenceEvent::Tick { now_us: TTL + 1 });
    assert_eq!(count(&effects, "presence_leave"), 2);
    assert!(a.replicas().is_empty());
    assert!(!a.has_room(&room("lobby")));
}

// AC-PRESENCE-5
#[test]
fn a_message_of_another_tenant_is_refused() {
    let msg = Replication::Heartbeat {
        tenant: tenant("globex"),
        from: node("b", 1),
        seq: 3,
    };
    assert_eq!(
        machine().step(&state_on("a"), &received(msg, 1)),
        Err(PresenceRejection::TenantMismatch)
    );
}

// AC-PRESENCE-6
#[test]
fn a_restarted_node_replaces_its_old_run() {
    let (_, effects) = apply(&state_on("b"), &join("lobby", "s1", 0));
    let (a, _) = apply(&state_on("a"), &received(outgoing(&effects).remove(0), 0));
    let reborn = Replication::Heartbeat {
        tenant: tenant("acme"),
        from: node("b", 2),
        seq: 0,
    };
    let (a, effects) = apply(&a, &received(reborn, 1));
    assert_eq!(count(&effects, "presence_leave"), 1);
    let old = Replication::Heartbeat {
        tenant: tenant("acme"),
        from: node("b", 1),
        seq: 1,
    };
    assert_eq!(
        machine().step(&a, &received(old, 2)),
        Err(PresenceRejection::StaleIncarnation(NodeId("b".to_owned())))
    );
}

// AC-PRESENCE-7
#[test]
fn paging_lists_every_member_once_in_order() {
    let mut a = state_on("a");
    let mut b = state_on("b");
    for i in 0..7 {
        a = apply(&a, &join("lobby", &format!("a{i}"), 0)).0;
        let (next, effects) = apply(&b, &join("lobby", &format!("b{i}"), 0));
        b = next;
        a = apply(&a, &received(outgoing(&effects).remove(0), 0)).0;
    }
    a = apply(&a, &join("other", "x", 0)).0;
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = a.members(&room("lobby"), cursor.as_ref(), 3);
        assert!(page.members.len() <= 3);
        seen.extend(page.members.into_iter().map(|m| m.session.0));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let mut expected: Vec<String> = (0..7)
        .flat_map(|i| [format!("a{i}"), format!("b{i}")])
        .collect();
    expected.sort();
    assert_eq!(seen, expected);
}

#[test]
fn echoes_and_misaddressed_requests_are_refused() {
    let (a, effects) = apply(&state_on("a"), &join("lobby", "s1", 0));
    let echo = outgoing(&effects).remove(0);
    assert_eq!(
        machine().step(&a, &received(echo, 1)),
        Err(PresenceRejection::FromSelf)
    );
    let request = Replication::SyncRequest {
        tenant: tenant("acme"),
        from: node("b", 1),
        to: NodeId("c".to_owned()),
    };
    assert_eq!(
        machine().step(&a, &received(request, 1)),
        Err(PresenceRejection::NotAddressedToMe)
    );
    let leave_unknown = PresenceEvent::Leave {
        room: room("lobby"),
        session: session("nobody"),
        now_us: 1,
    };
    assert_eq!(
        machine().step(&a, &leave_unknown),
        Err(PresenceRejection::NotJoined)
    );
}

#[test]
fn node_down_reports_the_nodes_members() {
    let (_, effects) = apply(&state_on("b"), &join("lobby", "s1", 0));
    let (a, _) = apply(&state_on("a"), &received(outgoing(&effects).remove(0), 0));
    let down = |id: &str| PresenceEvent::NodeDown {
        node: NodeId(id.to_owned()),
        now_us: 1,
    };
    let (a, effects) = apply(&a, &down("b"));
    assert_eq!(count(&effects, "presence_leave"), 1);
    assert_eq!(
        machine().step(&a, &down("b")),
        Err(PresenceRejection::UnknownNode(NodeId("b".to_owned())))
    );
}

#[test]
fn the_invariant_check_catches_a_forgotten_leave() {
    let (a, _) = apply(&state_on("a"), &join("lobby", "s1", 0));
    let leave = PresenceEvent::Leave {
        room: room("lobby"),
        session: session("s1"),
        now_us: 1,
    };
    let mut step = machine().step(&a, &leave).unwrap();
    step.effects
        .retain(|e| !matches!(e, PresenceEffect::PresenceLeave { .. }));
    let violation = machine().check_step(&a, &leave, &step).unwrap_err();
    assert_eq!(violation.name, super::invariant::LEAVE_ONCE_PER_JOIN);
    let mut broken = a.clone();
    broken
        .local
        .insert(room("empty"), std::collections::BTreeMap::new());
    assert_eq!(
        machine().check_invariants(&broken).unwrap_err().name,
        super::invariant::NO_EMPTY_ROOM
    );
}

//! The invariants a simulation checks: after every step ([`after_step`]) and once the quiet time at
//! the end has passed ([`at_end`]). The checks a handler makes as it goes (a crossed delivery, a
//! flapping leave, a forking append, a refused checkpoint) are in `node`; names and meaning are
//! listed in `specs/simulation.md`.

use std::collections::{BTreeMap, BTreeSet};

use arqon_core::presence::SessionId;
use arqon_core::rollout::RolloutPhase;
use arqon_core::session::SessionState;
use arqon_proto::names::RoomName;

use super::config::TENANTS;
use super::node::{AuditStore, Node};

/// A broken invariant: its name and what was seen.
pub type Broken = (&'static str, String);

/// Checks every node after a step at `now_us`.
pub fn after_step(
    now_us: u64,
    nodes: &[Node],
    tenant_of: &BTreeMap<SessionId, usize>,
) -> Option<Broken> {
    let writers: Vec<usize> = nodes
        .iter()
        .filter(|n| n.up && n.lease.may_write(now_us))
        .map(|n| n.index)
        .collect();
    if writers.len() > 1 {
        return Some((
            "one-writer",
            format!("nodes {writers:?} all hold the writer lease"),
        ));
    }
    for node in nodes.iter().filter(|n| n.up) {
        if let Some(control) = &node.control {
            if let Err(violation) = control.check_invariants() {
                return Some((
                    "rollout-within-max",
                    format!("node {}: {violation}", node.index),
                ));
            }
            for (id, rollout) in control.in_flight() {
                let max = match &rollout.phase {
                    RolloutPhase::Ramping { config, .. }
                    | RolloutPhase::Paused { config, .. }
                    | RolloutPhase::Complete { config, .. } => config.max_bp,
                    _ => continue,
                };
                if rollout.percent_bp() > max {
                    let detail = format!(
                        "node {}: rollout {id} at {} bp above its max {max} bp",
                        node.index,
                        rollout.percent_bp()
                    );
                    return Some(("rollout-within-max", detail));
                }
            }
        }
        for (tenant, presence) in node.presence.iter().enumerate() {
            for (_, room, session) in presence.visible() {
                if tenant_of.get(&session) != Some(&tenant) {
                    let detail = format!(
                        "node {} lists {} in {room} of tenant {}",
                        node.index, session.0, TENANTS[tenant]
                    );
                    return Some(("presence-tenant-isolation", detail));
                }
            }
        }
    }
    None
}

/// The members each (tenant, room) really has: the joined rooms of every session on a live node.
fn joined(nodes: &[Node]) -> BTreeMap<(usize, RoomName), BTreeSet<SessionId>> {
    let mut members: BTreeMap<(usize, RoomName), BTreeSet<SessionId>> = BTreeMap::new();
    for node in nodes.iter().filter(|n| n.up) {
        for (session, conn) in &node.conns {
            if let SessionState::Active(live) = &conn.state {
                for room in live.rooms.iter() {
                    members
                        .entry((conn.tenant, room.clone()))
                        .or_default()
                        .insert(session.clone());
                }
            }
        }
    }
    members
}

/// Checks the end state: every live node and every session sees exactly the members the rooms
/// really have, and the audit chain verifies.
pub fn at_end(nodes: &[Node], audit: &AuditStore) -> Option<Broken> {
    let truth = joined(nodes);
    for node in nodes.iter().filter(|n| n.up) {
        for (tenant, presence) in node.presence.iter().enumerate() {
            let mut seen: BTreeMap<RoomName, BTreeSet<SessionId>> = BTreeMap::new();
            for (_, room, session) in presence.visible() {
                seen.entry(room).or_default().insert(session);
            }
            let rooms: BTreeSet<&RoomName> = seen
                .keys()
                .chain(truth.keys().filter(|(t, _)| *t == tenant).map(|(_, r)| r))
                .collect();
            for room in rooms {
                let want = truth
                    .get(&(tenant, room.clone()))
                    .cloned()
                    .unwrap_or_default();
                let got = seen.get(room).cloned().unwrap_or_default();
                if want != got {
                    let detail = format!(
                        "node {} lists {:?} in {room} of {}, the room has {:?}",
                        node.index,
                        names(&got),
                        TENANTS[tenant],
                        names(&want)
                    );
                    return Some(("presence-converges", detail));
                }
            }
        }
        for (session, conn) in &node.conns {
            for (room, view) in &conn.views {
                let want = truth
                    .get(&(conn.tenant, room.clone()))
                    .cloned()
                    .unwrap_or_default();
                if *view != want {
                    let detail = format!(
                        "{} was shown {:?} in {room}, the room has {:?}",
                        session.0,
                        names(view),
                        names(&want)
                    );
                    return Some(("presence-converges", detail));
                }
            }
        }
    }
    if let Err(error) = arqon_core::audit::verify(&audit.records) {
        return Some(("audit-chain-never-forks", error.to_string()));
    }
    None
}

fn names(sessions: &BTreeSet<SessionId>) -> Vec<&str> {
    sessions.iter().map(|s| s.0.as_str()).collect()
}

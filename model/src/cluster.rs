//! The distributed presence model: Shield nodes, each running the Brain's per-tenant presence
//! replicas, over a lossy, duplicating and reordering network, with crashing and restarting nodes.
//!
//! Each node is a stateright actor that wraps [`arqon_core::presence::Presence`]: a client script
//! (joins and leaves of local sessions) and a periodic tick are timers; every message is a
//! [`Replication`] routed by its tenant to that tenant's [`PresenceState`]; every effect is
//! executed as a send. A node that recovers from a crash starts a new incarnation with no
//! sessions. Nothing here decides presence: the actor only runs the machine's effects.

use std::borrow::Cow;
use std::time::Duration;

use arqon_core::machine::{Machine, Step};
use arqon_core::presence::{
    DeltaOp, Entry, NodeId, NodeRef, Presence, PresenceConfig, PresenceEffect, PresenceEvent,
    PresenceState, Replication, SessionId,
};
use arqon_proto::names::{RoomName, TenantId, UserId};
use stateright::Expectation;
use stateright::actor::{Actor, ActorModel, ActorModelState, Id, LossyNetwork, Network, Out};

/// One model tick, µs.
pub const TICK_US: u64 = 1_000_000;
/// A node silent for longer than this is expired (one tick).
pub const NODE_TTL_US: u64 = TICK_US;
/// The tenants of the model.
pub const TENANTS: [&str; 2] = ["acme", "globex"];
/// The one room (of both tenants: the same name must not mix them).
pub const ROOM: &str = "lobby";

/// A client action a node's script performs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// A session of tenant number `tenant` joins the room.
    Join {
        /// Index into [`TENANTS`].
        tenant: usize,
        /// The session.
        session: &'static str,
    },
    /// That session leaves the room.
    Leave {
        /// Index into [`TENANTS`].
        tenant: usize,
        /// The session.
        session: &'static str,
    },
}

impl Op {
    fn parts(self) -> (usize, &'static str) {
        match self {
            Op::Join { tenant, session } | Op::Leave { tenant, session } => (tenant, session),
        }
    }
}

/// The shape of the cluster to check.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClusterConfig {
    /// Per node, the script its first incarnation runs.
    pub scripts: Vec<Vec<Op>>,
    /// Ticks each incarnation runs before its timer stops (bounds the state space).
    pub ticks: u64,
    /// How many nodes may be down at once.
    pub crashes: usize,
    /// Whether the network may drop messages.
    pub lossy: bool,
}

impl ClusterConfig {
    /// The CI bound: two nodes, two tenants, a join and a leave, one crash, a lossy network.
    pub fn small() -> Self {
        Self {
            scripts: vec![
                vec![
                    Op::Join {
                        tenant: 0,
                        session: "a1",
                    },
                    Op::Leave {
                        tenant: 0,
                        session: "a1",
                    },
                ],
                vec![Op::Join {
                    tenant: 1,
                    session: "g1",
                }],
            ],
            ticks: 2,
            crashes: 1,
            lossy: true,
        }
    }

    /// The deep bound: three nodes, more ticks.
    pub fn deep() -> Self {
        let mut config = Self::small();
        config.scripts.push(vec![
            Op::Join {
                tenant: 0,
                session: "c1",
            },
            Op::Leave {
                tenant: 0,
                session: "c1",
            },
        ]);
        config.ticks = 3;
        config
    }

    /// The tenant (index) a session belongs to, from the scripts.
    pub fn tenant_of(&self, session: &SessionId) -> Option<usize> {
        self.scripts
            .iter()
            .flatten()
            .map(|op| op.parts())
            .find(|(_, s)| *s == session.0)
            .map(|(tenant, _)| tenant)
    }
}

/// The name of node `index`.
pub fn node_name(index: usize) -> NodeId {
    NodeId(format!("n{index}"))
}

/// A Shield node with its Brain's presence replicas.
#[derive(Clone, Debug)]
pub struct ShieldNode {
    /// The node's index (its actor id).
    pub index: usize,
    /// The nodes of the cluster.
    pub nodes: usize,
    /// The first incarnation's client script.
    pub script: Vec<Op>,
    /// Ticks per incarnation.
    pub ticks: u64,
    /// The presence machine (wrapped, so a test can swap in a broken one).
    pub machine: PresenceMachine,
}

/// Which presence machine a node runs: the real one, or a test-only broken one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PresenceMachine {
    /// `arqon_core::presence::Presence`.
    Real(Presence),
    /// The real machine, except that a replica ignores leave deltas (a forgotten leave).
    ForgetsLeaves(Presence),
}

impl PresenceMachine {
    fn step(
        self,
        state: &PresenceState,
        event: &PresenceEvent,
    ) -> Option<Step<PresenceState, PresenceEffect>> {
        match self {
            Self::Real(machine) => machine.step(state, event).ok(),
            Self::ForgetsLeaves(machine) => machine.step(state, &forget_leave(event)).ok(),
        }
    }
}

/// The broken variant's reading of a leave delta: as a join of the same session, so the replica
/// counts the change as applied but keeps the member (also the simulation's planted bug).
pub(crate) fn forget_leave(event: &PresenceEvent) -> PresenceEvent {
    let PresenceEvent::Received {
        msg:
            Replication::Delta {
                tenant,
                from,
                seq,
                op: DeltaOp::Leave { room, session },
            },
        now_us,
    } = event
    else {
        return event.clone();
    };
    let Ok(user) = UserId::parse("forgotten") else {
        return event.clone();
    };
    PresenceEvent::Received {
        msg: Replication::Delta {
            tenant: tenant.clone(),
            from: from.clone(),
            seq: *seq,
            op: DeltaOp::Join {
                room: room.clone(),
                session: session.clone(),
                entry: Entry {
                    user,
                    joined_at_us: 0,
                    meta: None,
                },
            },
        },
        now_us: *now_us,
    }
}

/// A node's state.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeState {
    /// The run number (1 on first start).
    pub incarnation: u64,
    /// Ticks so far in this run.
    pub ticks: u64,
    /// Script steps done.
    pub done: usize,
    /// One presence replica set per tenant, in [`TENANTS`] order.
    pub presence: Vec<PresenceState>,
    /// Whether a tick of this run has expired a peer's members.
    pub expired_a_peer: bool,
}

/// The node's timers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Timer {
    /// The presence tick.
    Tick,
    /// The next script step.
    Client,
}

fn tenant(index: usize) -> Option<TenantId> {
    TENANTS.get(index).and_then(|t| TenantId::parse(t).ok())
}

impl ShieldNode {
    fn now_us(state: &NodeState) -> u64 {
        state.ticks * TICK_US
    }

    fn run(
        &self,
        id: Id,
        state: &mut NodeState,
        tenant: usize,
        event: &PresenceEvent,
        o: &mut Out<Self>,
    ) {
        let Some(current) = state.presence.get(tenant) else {
            return;
        };
        let Some(step) = self.machine.step(current, event) else {
            return;
        };
        let expired = matches!(event, PresenceEvent::Tick { .. })
            && step
                .effects
                .iter()
                .any(|e| matches!(e, PresenceEffect::PresenceLeave { .. }));
        state.expired_a_peer |= expired;
        state.presence[tenant] = step.state;
        for effect in step.effects {
            match effect {
                PresenceEffect::Broadcast(msg) => {
                    for peer in (0..self.nodes).filter(|&p| p != usize::from(id)) {
                        o.send(Id::from(peer), msg.clone());
                    }
                }
                PresenceEffect::SendTo { to, msg } => {
                    if let Some(peer) = (0..self.nodes).find(|&p| node_name(p) == to) {
                        o.send(Id::from(peer), msg);
                    }
                }
                // Deliveries to local sessions: the properties read them from the states.
                PresenceEffect::PresenceUpdate { .. } | PresenceEffect::PresenceLeave { .. } => {}
            }
        }
    }
}

fn instant() -> std::ops::Range<Duration> {
    Duration::ZERO..Duration::ZERO
}

impl Actor for ShieldNode {
    type Msg = Replication;
    type Timer = Timer;
    type State = NodeState;
    type Storage = u64;
    type Random = ();

    fn on_start(&self, id: Id, storage: &Option<u64>, o: &mut Out<Self>) -> NodeState {
        let incarnation = storage.map_or(1, |last| last + 1);
        o.save(incarnation);
        let me = NodeRef {
            id: node_name(usize::from(id)),
            incarnation,
        };
        let presence = (0..TENANTS.len())
            .filter_map(tenant)
            .map(|t| PresenceState::new(t, me.clone()))
            .collect();
        o.set_timer(Timer::Tick, instant());
        let done = if incarnation == 1 {
            0
        } else {
            self.script.len()
        };
        if done < self.script.len() {
            o.set_timer(Timer::Client, instant());
        }
        NodeState {
            incarnation,
            ticks: 0,
            done,
            presence,
            expired_a_peer: false,
        }
    }

    fn on_msg(
        &self,
        id: Id,
        state: &mut Cow<NodeState>,
        _src: Id,
        msg: Replication,
        o: &mut Out<Self>,
    ) {
        let Some(index) = TENANTS.iter().position(|t| *t == msg.tenant().as_str()) else {
            return;
        };
        let now_us = Self::now_us(state);
        self.run(
            id,
            state.to_mut(),
            index,
            &PresenceEvent::Received { msg, now_us },
            o,
        );
    }

    fn on_timeout(&self, id: Id, state: &mut Cow<NodeState>, timer: &Timer, o: &mut Out<Self>) {
        let state = state.to_mut();
        match timer {
            Timer::Tick => {
                state.ticks += 1;
                let now_us = Self::now_us(state);
                for index in 0..state.presence.len() {
                    self.run(id, state, index, &PresenceEvent::Tick { now_us }, o);
                }
                if state.ticks < self.ticks {
                    o.set_timer(Timer::Tick, instant());
                }
            }
            Timer::Client => {
                let Some(op) = self.script.get(state.done).copied() else {
                    return;
                };
                state.done += 1;
                if state.done < self.script.len() {
                    o.set_timer(Timer::Client, instant());
                }
                let (Ok(room), (index, session)) = (RoomName::parse(ROOM), op.parts()) else {
                    return;
                };
                let now_us = Self::now_us(state);
                let session = SessionId(session.to_owned());
                let event = match op {
                    Op::Join { .. } => match UserId::parse(&format!("user-{}", session.0)) {
                        Ok(user) => PresenceEvent::Join {
                            room,
                            session,
                            user,
                            meta: None,
                            now_us,
                        },
                        Err(_) => return,
                    },
                    Op::Leave { .. } => PresenceEvent::Leave {
                        room,
                        session,
                        now_us,
                    },
                };
                self.run(id, state, index, &event, o);
            }
        }
    }
}

/// The cluster model type.
pub type Cluster = ActorModel<ShieldNode, ClusterConfig>;
/// A state of the cluster model.
pub type ClusterState = ActorModelState<ShieldNode>;

/// Property names.
pub mod property {
    /// No tenant's presence lists a session of another tenant.
    pub const TENANT_ISOLATION: &str = "tenant isolation";
    /// Two tenants have members at the same time, in the same room name.
    pub const TENANT_ISOLATION_REACHED: &str = "tenant isolation (reachable): both tenants present";
    /// A replica that applied its owner's latest change lists exactly the owner's entries.
    pub const CONVERGENCE: &str = "presence convergence";
    /// Every live replica is caught up and lists a remote member.
    pub const CONVERGENCE_REACHED: &str = "presence convergence (reachable): all caught up";
    /// No live node lists a member of a node it has not heard from for longer than the expiry.
    pub const NO_GHOST: &str = "no ghost members";
    /// A node expired a silent peer's members while a node was down.
    pub const NO_GHOST_REACHED: &str = "no ghost members (reachable): a dead node expired";
}

fn live(state: &ClusterState) -> impl Iterator<Item = (usize, &NodeState)> {
    state
        .actor_states
        .iter()
        .enumerate()
        .filter(|(i, _)| !state.crashed.get(*i).copied().unwrap_or(true))
        .map(|(i, s)| (i, s.as_ref()))
}

fn tenant_isolation(model: &Cluster, state: &ClusterState) -> bool {
    state.actor_states.iter().all(|node| {
        node.presence.iter().enumerate().all(|(index, presence)| {
            tenant(index).as_ref() == Some(presence.tenant())
                && presence
                    .visible()
                    .iter()
                    .all(|(_, _, session)| model.cfg.tenant_of(session) == Some(index))
        })
    })
}

fn both_tenants_present(_: &Cluster, state: &ClusterState) -> bool {
    (0..TENANTS.len()).all(|index| {
        live(state).any(|(_, node)| {
            node.presence
                .get(index)
                .is_some_and(|p| p.visible().iter().any(|(owner, _, _)| *owner != p.me().id))
        })
    })
}

/// Whether `x`'s replica of `y` has applied `y`'s latest change (of `y`'s current run).
fn caught_up(x: &PresenceState, y: &PresenceState) -> bool {
    x.replicas()
        .get(&y.me().id)
        .is_some_and(|r| r.incarnation == y.me().incarnation && r.seq == y.seq())
}

fn convergence(_: &Cluster, state: &ClusterState) -> bool {
    live(state).all(|(i, x)| {
        live(state).filter(|(j, _)| *j != i).all(|(_, y)| {
            x.presence.iter().zip(&y.presence).all(|(xp, yp)| {
                !caught_up(xp, yp)
                    || xp.replicas().get(&yp.me().id).map(|r| &r.rooms) == Some(yp.local())
            })
        })
    })
}

fn all_caught_up(model: &Cluster, state: &ClusterState) -> bool {
    let scripts_done = state
        .actor_states
        .iter()
        .zip(&model.cfg.scripts)
        .all(|(node, script)| node.done == script.len());
    let remote_member = live(state).any(|(_, x)| {
        x.presence
            .iter()
            .any(|p| p.replicas().values().any(|r| !r.rooms.is_empty()))
    });
    scripts_done
        && remote_member
        && live(state).all(|(i, x)| {
            live(state).filter(|(j, _)| *j != i).all(|(_, y)| {
                x.presence
                    .iter()
                    .zip(&y.presence)
                    .all(|(xp, yp)| yp.seq() == 0 || caught_up(xp, yp))
            })
        })
}

fn no_ghost(_: &Cluster, state: &ClusterState) -> bool {
    live(state).all(|(_, x)| {
        x.presence.iter().all(|p| {
            p.replicas()
                .values()
                .all(|r| r.rooms.is_empty() || r.last_seen_us + NODE_TTL_US >= p.swept_us())
        })
    })
}

fn dead_node_expired(_: &Cluster, state: &ClusterState) -> bool {
    state.crashed.iter().any(|&c| c) && live(state).any(|(_, x)| x.expired_a_peer)
}

/// Builds the cluster model for `config`, with every node running `machine`.
pub fn cluster(config: ClusterConfig, machine: PresenceMachine) -> Cluster {
    let nodes = config.scripts.len();
    let actors: Vec<ShieldNode> = config
        .scripts
        .iter()
        .enumerate()
        .map(|(index, script)| ShieldNode {
            index,
            nodes,
            script: script.clone(),
            ticks: config.ticks,
            machine,
        })
        .collect();
    let crashes = config.crashes;
    let lossy = if config.lossy {
        LossyNetwork::Yes
    } else {
        LossyNetwork::No
    };
    ActorModel::new(config, ())
        .actors(actors)
        .init_network(Network::new_unordered_duplicating([]))
        .lossy_network(lossy)
        .max_crashes(crashes)
        .property(
            Expectation::Always,
            property::TENANT_ISOLATION,
            tenant_isolation,
        )
        .property(
            Expectation::Sometimes,
            property::TENANT_ISOLATION_REACHED,
            both_tenants_present,
        )
        .property(Expectation::Always, property::CONVERGENCE, convergence)
        .property(
            Expectation::Sometimes,
            property::CONVERGENCE_REACHED,
            all_caught_up,
        )
        .property(Expectation::Always, property::NO_GHOST, no_ghost)
        .property(
            Expectation::Sometimes,
            property::NO_GHOST_REACHED,
            dead_node_expired,
        )
}

/// The real presence machine with the model's expiry.
pub fn real_presence() -> PresenceMachine {
    PresenceMachine::Real(Presence::new(PresenceConfig {
        node_ttl_us: NODE_TTL_US,
    }))
}

/// Describes a cluster state for a trace: per node, its run and the members each tenant lists.
pub fn describe(state: &ClusterState) -> String {
    state
        .actor_states
        .iter()
        .enumerate()
        .map(|(i, node)| {
            let down = if state.crashed.get(i).copied().unwrap_or(false) {
                " (down)"
            } else {
                ""
            };
            let lists: Vec<String> = node
                .presence
                .iter()
                .map(|p| {
                    let members: Vec<String> = p
                        .visible()
                        .into_iter()
                        .map(|(owner, _, session)| format!("{}@{}", session.0, owner.0))
                        .collect();
                    format!("{}=[{}]", p.tenant(), members.join(","))
                })
                .collect();
            format!("n{i}#{}{down} {}", node.incarnation, lists.join(" "))
        })
        .collect::<Vec<_>>()
        .join(" | ")
}

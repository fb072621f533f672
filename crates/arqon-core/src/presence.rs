//! Presence: who is in which room of one tenant, replicated across nodes as a per-node add-wins CRDT.
//!
//! The model is Phoenix.Presence's. Every node owns the entries of its own sessions and is the
//! only writer of them; other nodes hold read replicas. A node numbers its changes (`seq`) and
//! broadcasts each one as a [`Replication::Delta`]; on every [`PresenceEvent::Tick`] it
//! broadcasts a [`Replication::Heartbeat`] carrying its latest `seq`. A replica that sees a gap
//! (a delta or heartbeat ahead of what it applied) asks the owner for its full state
//! ([`Replication::SyncRequest`] answered by [`Replication::Sync`]). A replica not heard from
//! for `node_ttl_us` is dropped on the next tick, and its members' leaves are reported, so no
//! ghost outlives its node's expiry. A node that restarts comes back with a higher
//! `incarnation`, which replaces everything known about the old one.
//!
//! One [`PresenceState`] covers one tenant on one node; the Brain keeps one per tenant, and
//! every replication message carries the tenant, so no tenant sees another's presence.
//! Entries are indexed by room, so a join costs `O(log R + log M)` for `R` rooms and `M`
//! members of the room, and never scans other rooms.

use std::collections::{BTreeMap, BTreeSet};

use arqon_proto::names::{RoomName, TenantId, UserId};

use crate::machine::{InvariantViolation, Machine, Step, Transition, row};

/// A node's stable name (for example the Shield's configured node id).
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeId(pub String);

/// One run of a node: its name and an incarnation that grows on every restart (for example the
/// start time in µs). A higher incarnation replaces everything known about a lower one.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct NodeRef {
    /// The node's name.
    pub id: NodeId,
    /// The node's run number.
    pub incarnation: u64,
}

/// A session's id, unique within its node.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct SessionId(pub String);

/// What a node knows about one session in one room.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub struct Entry {
    /// The session's user (the token's `sub`).
    pub user: UserId,
    /// When the session joined, in µs on the owning node's clock.
    pub joined_at_us: u64,
    /// Optional metadata the client gave on join (opaque to the bus).
    pub meta: Option<String>,
}

/// A member of a room, as reported to sessions and listed by [`PresenceState::members`].
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub struct Member {
    /// The member's session.
    pub session: SessionId,
    /// The node that owns the session.
    pub node: NodeId,
    /// The member's user.
    pub user: UserId,
    /// When it joined, µs.
    pub joined_at_us: u64,
    /// Its metadata.
    pub meta: Option<String>,
}

/// One change a node made to its own entries.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum DeltaOp {
    /// A session joined a room.
    Join {
        /// The room.
        room: RoomName,
        /// The session.
        session: SessionId,
        /// Its entry.
        entry: Entry,
    },
    /// A session left a room.
    Leave {
        /// The room.
        room: RoomName,
        /// The session.
        session: SessionId,
    },
}

/// A message between the presence replicas of one tenant, carried over the Spine on the
/// tenant's presence subject. The shell encodes it; the machine decides everything about it.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum Replication {
    /// "I am alive, and my latest change is `seq`."
    Heartbeat {
        /// The tenant.
        tenant: TenantId,
        /// The sender.
        from: NodeRef,
        /// The sender's latest change number.
        seq: u64,
    },
    /// One change, numbered `seq` (1, 2, 3… per incarnation).
    Delta {
        /// The tenant.
        tenant: TenantId,
        /// The owner of the change.
        from: NodeRef,
        /// The change number.
        seq: u64,
        /// The change.
        op: DeltaOp,
    },
    /// "Send me your full state" (addressed to `to`).
    SyncRequest {
        /// The tenant.
        tenant: TenantId,
        /// The node asking.
        from: NodeRef,
        /// The node asked.
        to: NodeId,
    },
    /// A node's full state as of change `seq`.
    Sync {
        /// The tenant.
        tenant: TenantId,
        /// The owner.
        from: NodeRef,
        /// Its latest change number.
        seq: u64,
        /// Every entry it owns, by room and session.
        entries: Vec<(RoomName, SessionId, Entry)>,
    },
}

impl Replication {
    /// The tenant the message belongs to.
    pub fn tenant(&self) -> &TenantId {
        match self {
            Self::Heartbeat { tenant, .. }
            | Self::Delta { tenant, .. }
            | Self::SyncRequest { tenant, .. }
            | Self::Sync { tenant, .. } => tenant,
        }
    }

    /// The node that sent the message.
    pub fn from(&self) -> &NodeRef {
        match self {
            Self::Heartbeat { from, .. }
            | Self::Delta { from, .. }
            | Self::SyncRequest { from, .. }
            | Self::Sync { from, .. } => from,
        }
    }
}

/// An input to the presence machine. `now_us` is the local node's monotonic clock; a value
/// older than one already seen is treated as the newest seen (time never runs backwards).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PresenceEvent {
    /// A local session joined a room.
    Join {
        /// The room.
        room: RoomName,
        /// The local session.
        session: SessionId,
        /// Its user.
        user: UserId,
        /// Metadata from the join.
        meta: Option<String>,
        /// Now, µs.
        now_us: u64,
    },
    /// A local session left a room (explicit leave, closed socket, or session heartbeat expiry).
    Leave {
        /// The room.
        room: RoomName,
        /// The local session.
        session: SessionId,
        /// Now, µs.
        now_us: u64,
    },
    /// The periodic timer: expire silent nodes and announce this node's heartbeat.
    Tick {
        /// Now, µs.
        now_us: u64,
    },
    /// A replication message arrived from another node.
    Received {
        /// The message.
        msg: Replication,
        /// Now, µs.
        now_us: u64,
    },
    /// The shell learnt that a node is gone (for example a clean shutdown notice).
    NodeDown {
        /// The node.
        node: NodeId,
        /// Now, µs.
        now_us: u64,
    },
}

/// An instruction to the presence shell.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum PresenceEffect {
    /// Send `PRESENCE_UPDATE` naming `member` to this node's sessions in `room`.
    PresenceUpdate {
        /// The room.
        room: RoomName,
        /// The newcomer.
        member: Member,
    },
    /// Send `PRESENCE_LEAVE` naming `member` to this node's sessions in `room`.
    PresenceLeave {
        /// The room.
        room: RoomName,
        /// The member that left.
        member: Member,
    },
    /// Publish to every replica of the tenant.
    Broadcast(Replication),
    /// Send to one node of the tenant.
    SendTo {
        /// The addressee.
        to: NodeId,
        /// The message.
        msg: Replication,
    },
}

/// Why the presence machine refused an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PresenceRejection {
    /// A replication message of another tenant reached this tenant's state.
    #[error("message of another tenant")]
    TenantMismatch,
    /// A replication message claims to come from this very node (an echo).
    #[error("message from this node")]
    FromSelf,
    /// A message from an older incarnation of a node that has since restarted.
    #[error("message from an older incarnation of {0:?}")]
    StaleIncarnation(NodeId),
    /// A sync request addressed to another node.
    #[error("sync request addressed to another node")]
    NotAddressedToMe,
    /// The session is already in the room.
    #[error("session already in the room")]
    AlreadyJoined,
    /// The session is not in the room.
    #[error("session not in the room")]
    NotJoined,
    /// No replica of that node is known.
    #[error("unknown node {0:?}")]
    UnknownNode(NodeId),
}

/// Settings of the presence machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PresenceConfig {
    /// A node not heard from for longer than this is dropped, with its members, on the next tick.
    pub node_ttl_us: u64,
}

/// The default of `[presence].node_expiry`; `arqon-config` takes it from here.
impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            node_ttl_us: 10_000_000,
        }
    }
}

/// The presence machine (see the module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Presence {
    /// Its settings.
    pub config: PresenceConfig,
}

impl Presence {
    /// A presence machine with these settings.
    pub fn new(config: PresenceConfig) -> Self {
        Self { config }
    }
}

/// Entries by room, then session.
pub type Rooms = BTreeMap<RoomName, BTreeMap<SessionId, Entry>>;

/// What this node knows of another node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Replica {
    /// The incarnation the entries belong to.
    pub incarnation: u64,
    /// The last change applied.
    pub seq: u64,
    /// When the node was last heard from, µs on this node's clock.
    pub last_seen_us: u64,
    /// Its entries.
    pub rooms: Rooms,
}

/// The presence of one tenant, as seen by one node.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct PresenceState {
    tenant: TenantId,
    me: NodeRef,
    seq: u64,
    now_us: u64,
    swept_us: u64,
    local: Rooms,
    remote: BTreeMap<NodeId, Replica>,
}

/// Where a member page starts: after this session and node (exclusive).
pub type MemberCursor = (SessionId, NodeId);

/// One page of a room's member list.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct MemberPage {
    /// Members, ordered by session then node.
    pub members: Vec<Member>,
    /// The cursor for the next page, if there is one.
    pub next: Option<MemberCursor>,
}

impl PresenceState {
    /// The empty presence of `tenant` on node `me`.
    pub fn new(tenant: TenantId, me: NodeRef) -> Self {
        Self {
            tenant,
            me,
            seq: 0,
            now_us: 0,
            swept_us: 0,
            local: Rooms::new(),
            remote: BTreeMap::new(),
        }
    }

    /// The tenant.
    pub fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// This node.
    pub fn me(&self) -> &NodeRef {
        &self.me
    }

    /// This node's latest change number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The newest time seen, µs.
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// The time of the latest tick (the latest expiry sweep), µs.
    pub fn swept_us(&self) -> u64 {
        self.swept_us
    }

    /// This node's own entries.
    pub fn local(&self) -> &Rooms {
        &self.local
    }

    /// The replicas of other nodes.
    pub fn replicas(&self) -> &BTreeMap<NodeId, Replica> {
        &self.remote
    }

    /// This node's full state, as a [`Replication::Sync`] message.
    pub fn snapshot(&self) -> Replication {
        Replication::Sync {
            tenant: self.tenant.clone(),
            from: self.me.clone(),
            seq: self.seq,
            entries: flatten(&self.local)
                .map(|(room, session, entry)| (room.clone(), session.clone(), entry.clone()))
                .collect(),
        }
    }

    /// Every member of every room on every node, as `(node, room, session)` triples.
    pub fn visible(&self) -> BTreeSet<(NodeId, RoomName, SessionId)> {
        self.owners()
            .flat_map(|(node, rooms)| {
                flatten(rooms)
                    .map(move |(room, session, _)| (node.clone(), room.clone(), session.clone()))
            })
            .collect()
    }

    /// Whether any node has a member in `room`.
    pub fn has_room(&self, room: &RoomName) -> bool {
        self.owners().any(|(_, rooms)| rooms.contains_key(room))
    }

    /// Number of members in `room`, across nodes.
    pub fn member_count(&self, room: &RoomName) -> usize {
        self.owners()
            .filter_map(|(_, rooms)| rooms.get(room))
            .map(BTreeMap::len)
            .sum()
    }

    /// One page of `room`'s members, ordered by session then node, starting after `after`,
    /// at most `limit` long (a `limit` of 0 is read as 1). Cost: the room's members only.
    pub fn members(
        &self,
        room: &RoomName,
        after: Option<&MemberCursor>,
        limit: usize,
    ) -> MemberPage {
        let limit = limit.max(1);
        let mut all: Vec<Member> = self
            .owners()
            .filter_map(|(node, rooms)| rooms.get(room).map(|sessions| (node, sessions)))
            .flat_map(|(node, sessions)| {
                sessions
                    .iter()
                    .map(move |(session, entry)| member(node, session, entry))
            })
            .filter(|m| after.is_none_or(|(s, n)| (&m.session, &m.node) > (s, n)))
            .collect();
        all.sort();
        let next = (all.len() > limit).then(|| {
            let last = &all[limit - 1];
            (last.session.clone(), last.node.clone())
        });
        all.truncate(limit);
        MemberPage { members: all, next }
    }

    fn owners(&self) -> impl Iterator<Item = (&NodeId, &Rooms)> {
        std::iter::once((&self.me.id, &self.local))
            .chain(self.remote.iter().map(|(id, replica)| (id, &replica.rooms)))
    }
}

fn flatten(rooms: &Rooms) -> impl Iterator<Item = (&RoomName, &SessionId, &Entry)> {
    rooms.iter().flat_map(|(room, sessions)| {
        sessions
            .iter()
            .map(move |(session, entry)| (room, session, entry))
    })
}

fn member(node: &NodeId, session: &SessionId, entry: &Entry) -> Member {
    Member {
        session: session.clone(),
        node: node.clone(),
        user: entry.user.clone(),
        joined_at_us: entry.joined_at_us,
        meta: entry.meta.clone(),
    }
}

/// Inserts an entry; returns whether it is new.
fn insert(rooms: &mut Rooms, room: &RoomName, session: &SessionId, entry: Entry) -> bool {
    rooms
        .entry(room.clone())
        .or_default()
        .insert(session.clone(), entry)
        .is_none()
}

/// Removes an entry (and its room when it empties).
fn remove(rooms: &mut Rooms, room: &RoomName, session: &SessionId) -> Option<Entry> {
    let sessions = rooms.get_mut(room)?;
    let entry = sessions.remove(session)?;
    if sessions.is_empty() {
        rooms.remove(room);
    }
    Some(entry)
}

/// The effects that report every member of `rooms` (owned by `node`) as gone.
fn leaves_of(node: &NodeId, rooms: &Rooms, effects: &mut Vec<PresenceEffect>) {
    effects.extend(
        flatten(rooms).map(|(room, session, entry)| PresenceEffect::PresenceLeave {
            room: room.clone(),
            member: member(node, session, entry),
        }),
    );
}

/// Replaces `old` by `new` for `node` and reports the difference.
fn diff_into(node: &NodeId, old: &Rooms, new: &Rooms, effects: &mut Vec<PresenceEffect>) {
    for (room, session, entry) in flatten(old) {
        if new.get(room).and_then(|s| s.get(session)).is_none() {
            effects.push(PresenceEffect::PresenceLeave {
                room: room.clone(),
                member: member(node, session, entry),
            });
        }
    }
    for (room, session, entry) in flatten(new) {
        if old.get(room).and_then(|s| s.get(session)).is_none() {
            effects.push(PresenceEffect::PresenceUpdate {
                room: room.clone(),
                member: member(node, session, entry),
            });
        }
    }
}

type PresenceStep = Step<PresenceState, PresenceEffect>;

impl Presence {
    /// Applies `event` to `state` in place and returns the effects: the same decision as
    /// [`Machine::step`] without copying the state, so a join costs `O(log R + log M)` however
    /// many members the tenant has. On a refusal the state is unchanged.
    pub fn apply(
        self,
        state: &mut PresenceState,
        event: &PresenceEvent,
    ) -> Result<Vec<PresenceEffect>, PresenceRejection> {
        Self::refusal(state, event)?;
        Ok(self.accept(state, event))
    }

    /// Why `event` is refused in `state`, if it is. Reads only.
    fn refusal(state: &PresenceState, event: &PresenceEvent) -> Result<(), PresenceRejection> {
        let joined = |room: &RoomName, session: &SessionId| {
            state
                .local
                .get(room)
                .is_some_and(|s| s.contains_key(session))
        };
        match event {
            PresenceEvent::Join { room, session, .. } if joined(room, session) => {
                Err(PresenceRejection::AlreadyJoined)
            }
            PresenceEvent::Leave { room, session, .. } if !joined(room, session) => {
                Err(PresenceRejection::NotJoined)
            }
            PresenceEvent::NodeDown { node, .. } if !state.remote.contains_key(node) => {
                Err(PresenceRejection::UnknownNode(node.clone()))
            }
            PresenceEvent::Received { msg, .. } => {
                let from = msg.from();
                if msg.tenant() != &state.tenant {
                    Err(PresenceRejection::TenantMismatch)
                } else if from.id == state.me.id {
                    Err(PresenceRejection::FromSelf)
                } else if matches!(msg, Replication::SyncRequest { to, .. } if *to != state.me.id) {
                    Err(PresenceRejection::NotAddressedToMe)
                } else if state
                    .remote
                    .get(&from.id)
                    .is_some_and(|r| r.incarnation > from.incarnation)
                {
                    Err(PresenceRejection::StaleIncarnation(from.id.clone()))
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        }
    }

    /// Applies an event that [`Self::refusal`] accepted.
    fn accept(self, state: &mut PresenceState, event: &PresenceEvent) -> Vec<PresenceEffect> {
        let now_us = match event {
            PresenceEvent::Join { now_us, .. }
            | PresenceEvent::Leave { now_us, .. }
            | PresenceEvent::Tick { now_us }
            | PresenceEvent::Received { now_us, .. }
            | PresenceEvent::NodeDown { now_us, .. } => *now_us,
        };
        state.now_us = state.now_us.max(now_us);
        match event {
            PresenceEvent::Join {
                room,
                session,
                user,
                meta,
                now_us,
            } => Self::own_change(
                state,
                DeltaOp::Join {
                    room: room.clone(),
                    session: session.clone(),
                    entry: Entry {
                        user: user.clone(),
                        joined_at_us: *now_us,
                        meta: meta.clone(),
                    },
                },
            ),
            PresenceEvent::Leave { room, session, .. } => Self::own_change(
                state,
                DeltaOp::Leave {
                    room: room.clone(),
                    session: session.clone(),
                },
            ),
            PresenceEvent::Tick { .. } => self.tick(state),
            PresenceEvent::Received { msg, .. } => Self::received(state, msg),
            PresenceEvent::NodeDown { node, .. } => {
                let mut effects = Vec::new();
                if let Some(replica) = state.remote.remove(node) {
                    leaves_of(node, &replica.rooms, &mut effects);
                }
                effects
            }
        }
    }

    /// Applies a change to this node's own entries, reports it and broadcasts it as the next delta.
    fn own_change(state: &mut PresenceState, op: DeltaOp) -> Vec<PresenceEffect> {
        let mut effects = Vec::new();
        apply_op(&state.me.id, &mut state.local, &op, &mut effects);
        state.seq += 1;
        effects.push(PresenceEffect::Broadcast(Replication::Delta {
            tenant: state.tenant.clone(),
            from: state.me.clone(),
            seq: state.seq,
            op,
        }));
        effects
    }

    fn tick(self, state: &mut PresenceState) -> Vec<PresenceEffect> {
        let mut effects = Vec::new();
        let now = state.now_us;
        let ttl = self.config.node_ttl_us;
        state.remote.retain(|node, replica| {
            let alive = replica.last_seen_us.saturating_add(ttl) >= now;
            if !alive {
                leaves_of(node, &replica.rooms, &mut effects);
            }
            alive
        });
        state.swept_us = now;
        effects.push(PresenceEffect::Broadcast(Replication::Heartbeat {
            tenant: state.tenant.clone(),
            from: state.me.clone(),
            seq: state.seq,
        }));
        effects
    }

    fn received(state: &mut PresenceState, msg: &Replication) -> Vec<PresenceEffect> {
        let from = msg.from();
        let mut effects = Vec::new();
        if let Replication::SyncRequest { .. } = msg {
            effects.push(PresenceEffect::SendTo {
                to: from.id.clone(),
                msg: state.snapshot(),
            });
        }
        let now_us = state.now_us;
        let me = state.me.clone();
        let tenant = state.tenant.clone();
        let replica = match state.remote.entry(from.id.clone()) {
            std::collections::btree_map::Entry::Occupied(known) => {
                let replica = known.into_mut();
                if replica.incarnation < from.incarnation {
                    // The node restarted: its old run's members are gone.
                    leaves_of(&from.id, &replica.rooms, &mut effects);
                    *replica = Replica::new(from.incarnation, now_us);
                }
                replica
            }
            std::collections::btree_map::Entry::Vacant(unknown) => {
                unknown.insert(Replica::new(from.incarnation, now_us))
            }
        };
        replica.last_seen_us = now_us;
        let sync_request = || PresenceEffect::SendTo {
            to: from.id.clone(),
            msg: Replication::SyncRequest {
                tenant: tenant.clone(),
                from: me.clone(),
                to: from.id.clone(),
            },
        };
        match msg {
            Replication::Heartbeat { seq, .. } => {
                if *seq > replica.seq {
                    effects.push(sync_request());
                }
            }
            Replication::Delta { seq, op, .. } => {
                if *seq == replica.seq + 1 {
                    replica.seq = *seq;
                    apply_op(&from.id, &mut replica.rooms, op, &mut effects);
                } else if *seq > replica.seq + 1 {
                    effects.push(sync_request());
                }
            }
            Replication::SyncRequest { .. } => {}
            Replication::Sync { seq, entries, .. } => {
                if *seq >= replica.seq {
                    let mut rooms = Rooms::new();
                    for (room, session, entry) in entries {
                        insert(&mut rooms, room, session, entry.clone());
                    }
                    diff_into(&from.id, &replica.rooms, &rooms, &mut effects);
                    replica.rooms = rooms;
                    replica.seq = *seq;
                }
            }
        }
        effects
    }
}

impl Replica {
    fn new(incarnation: u64, now_us: u64) -> Self {
        Self {
            incarnation,
            seq: 0,
            last_seen_us: now_us,
            rooms: Rooms::new(),
        }
    }
}

fn apply_op(node: &NodeId, rooms: &mut Rooms, op: &DeltaOp, effects: &mut Vec<PresenceEffect>) {
    match op {
        DeltaOp::Join {
            room,
            session,
            entry,
        } => {
            if insert(rooms, room, session, entry.clone()) {
                effects.push(PresenceEffect::PresenceUpdate {
                    room: room.clone(),
                    member: member(node, session, entry),
                });
            }
        }
        DeltaOp::Leave { room, session } => {
            if let Some(entry) = remove(rooms, room, session) {
                effects.push(PresenceEffect::PresenceLeave {
                    room: room.clone(),
                    member: member(node, session, &entry),
                });
            }
        }
    }
}

const NOTIFY: &[&str] = &["presence_update", "presence_leave"];
const UPDATE_BROADCAST: &[&str] = &["presence_update", "broadcast"];
const LEAVE_BROADCAST: &[&str] = &["presence_leave", "broadcast"];
const EXPIRE_BROADCAST: &[&str] = &["presence_leave", "broadcast"];
const HEARD: &[&str] = &["presence_update", "presence_leave", "send_to"];
const LEAVES: &[&str] = &["presence_leave"];
const SEND: &[&str] = &["send_to"];
const SEND_LEAVES: &[&str] = &["presence_leave", "send_to"];

const TRANSITIONS: &[Transition] = &[
    row("empty", "join", "occupied", "", UPDATE_BROADCAST),
    row(
        "occupied",
        "join",
        "occupied",
        "session not yet in the room",
        UPDATE_BROADCAST,
    ),
    row(
        "occupied",
        "leave",
        "occupied",
        "other members remain",
        LEAVE_BROADCAST,
    ),
    row(
        "occupied",
        "leave",
        "empty",
        "the last member left",
        LEAVE_BROADCAST,
    ),
    row("empty", "tick", "empty", "", &["broadcast"]),
    row(
        "occupied",
        "tick",
        "occupied",
        "some member's node is alive or local",
        EXPIRE_BROADCAST,
    ),
    row(
        "occupied",
        "tick",
        "empty",
        "every member's node expired",
        EXPIRE_BROADCAST,
    ),
    row(
        "empty",
        "heartbeat",
        "empty",
        "a gap asks for a sync",
        SEND_LEAVES,
    ),
    row(
        "occupied",
        "heartbeat",
        "occupied",
        "a gap asks for a sync",
        SEND_LEAVES,
    ),
    row(
        "occupied",
        "heartbeat",
        "empty",
        "a new incarnation drops the old one's members",
        SEND_LEAVES,
    ),
    row(
        "empty",
        "delta",
        "empty",
        "duplicate, gap (sync request) or leave",
        HEARD,
    ),
    row("empty", "delta", "occupied", "next change is a join", HEARD),
    row("occupied", "delta", "occupied", "", HEARD),
    row(
        "occupied",
        "delta",
        "empty",
        "the last member left or its node restarted",
        HEARD,
    ),
    row(
        "empty",
        "sync_request",
        "empty",
        "addressed to this node",
        SEND,
    ),
    row(
        "occupied",
        "sync_request",
        "occupied",
        "addressed to this node",
        SEND_LEAVES,
    ),
    row(
        "occupied",
        "sync_request",
        "empty",
        "a new incarnation drops the old one's members",
        SEND_LEAVES,
    ),
    row("empty", "sync", "empty", "", NOTIFY),
    row("empty", "sync", "occupied", "the state has members", NOTIFY),
    row("occupied", "sync", "occupied", "", NOTIFY),
    row(
        "occupied",
        "sync",
        "empty",
        "the node's members all left",
        NOTIFY,
    ),
    row("empty", "node_down", "empty", "the node is known", LEAVES),
    row(
        "occupied",
        "node_down",
        "occupied",
        "the node is known",
        LEAVES,
    ),
    row(
        "occupied",
        "node_down",
        "empty",
        "the node held the last members",
        LEAVES,
    ),
];

/// Invariant names.
pub mod invariant {
    /// No room is listed without a member.
    pub const NO_EMPTY_ROOM: &str = "no-presence-without-room";
    /// Every join is reported once, and every leave once per join.
    pub const LEAVE_ONCE_PER_JOIN: &str = "leave-once-per-join";
    /// No replica outlives its node's expiry.
    pub const NO_GHOST: &str = "no-ghost-member";
    /// Changes are numbered without gaps from this node's own counter.
    pub const OWN_SEQ: &str = "own-seq-monotonic";
}

impl Machine for Presence {
    const NAME: &'static str = "presence";
    type State = PresenceState;
    type Event = PresenceEvent;
    type Effect = PresenceEffect;
    type Rejection = PresenceRejection;

    fn step(
        &self,
        state: &PresenceState,
        event: &PresenceEvent,
    ) -> Result<PresenceStep, PresenceRejection> {
        Self::refusal(state, event)?;
        let mut next = state.clone();
        let effects = self.accept(&mut next, event);
        Ok(Step {
            state: next,
            effects,
        })
    }

    fn state_kind(state: &PresenceState) -> &'static str {
        if state.local.is_empty() && state.remote.values().all(|r| r.rooms.is_empty()) {
            "empty"
        } else {
            "occupied"
        }
    }

    fn event_kind(event: &PresenceEvent) -> &'static str {
        match event {
            PresenceEvent::Join { .. } => "join",
            PresenceEvent::Leave { .. } => "leave",
            PresenceEvent::Tick { .. } => "tick",
            PresenceEvent::NodeDown { .. } => "node_down",
            PresenceEvent::Received { msg, .. } => match msg {
                Replication::Heartbeat { .. } => "heartbeat",
                Replication::Delta { .. } => "delta",
                Replication::SyncRequest { .. } => "sync_request",
                Replication::Sync { .. } => "sync",
            },
        }
    }

    fn effect_kind(effect: &PresenceEffect) -> &'static str {
        match effect {
            PresenceEffect::PresenceUpdate { .. } => "presence_update",
            PresenceEffect::PresenceLeave { .. } => "presence_leave",
            PresenceEffect::Broadcast(_) => "broadcast",
            PresenceEffect::SendTo { .. } => "send_to",
        }
    }

    fn state_kinds() -> &'static [&'static str] {
        &["empty", "occupied"]
    }

    fn event_kinds() -> &'static [&'static str] {
        &[
            "join",
            "leave",
            "tick",
            "heartbeat",
            "delta",
            "sync_request",
            "sync",
            "node_down",
        ]
    }

    fn transitions() -> &'static [Transition] {
        TRANSITIONS
    }

    fn invariants() -> &'static [(&'static str, &'static str)] {
        &[
            (
                invariant::NO_EMPTY_ROOM,
                "a room is listed only while at least one session is in it",
            ),
            (
                invariant::LEAVE_ONCE_PER_JOIN,
                "replaying a step's PRESENCE_UPDATE and PRESENCE_LEAVE reports over the members \
                 before gives the members after, each update naming an absent member and each \
                 leave a present one, so a leave is reported once per join",
            ),
            (
                invariant::NO_GHOST,
                "after a tick, no replica is older than the node expiry",
            ),
            (
                invariant::OWN_SEQ,
                "this node's change counter grows by one per own join or leave and never otherwise",
            ),
        ]
    }

    fn check_invariants(&self, state: &PresenceState) -> Result<(), InvariantViolation> {
        for (node, rooms) in state.owners() {
            if let Some((room, _)) = rooms.iter().find(|(_, sessions)| sessions.is_empty()) {
                return Err(InvariantViolation {
                    name: invariant::NO_EMPTY_ROOM,
                    detail: format!("room {room} of node {} has no member", node.0),
                });
            }
        }
        let ttl = self.config.node_ttl_us;
        if let Some((node, replica)) = state
            .remote
            .iter()
            .find(|(_, r)| r.last_seen_us.saturating_add(ttl) < state.swept_us)
        {
            return Err(InvariantViolation {
                name: invariant::NO_GHOST,
                detail: format!(
                    "node {} last seen at {} µs survived the sweep at {} µs",
                    node.0, replica.last_seen_us, state.swept_us
                ),
            });
        }
        Ok(())
    }

    fn check_step(
        &self,
        before: &PresenceState,
        event: &PresenceEvent,
        after: &PresenceStep,
    ) -> Result<(), InvariantViolation> {
        // Replay the reports over the members visible before: an update must name a member
        // that was not visible and a leave one that was (so a leave is reported once per join,
        // and a restarted node's member may leave and join again in one step); the replay
        // must end at the members visible after.
        let mut replay = before.visible();
        for effect in &after.effects {
            let (joined, room, m) = match effect {
                PresenceEffect::PresenceUpdate { room, member } => (true, room, member),
                PresenceEffect::PresenceLeave { room, member } => (false, room, member),
                PresenceEffect::Broadcast(_) | PresenceEffect::SendTo { .. } => continue,
            };
            let key = (m.node.clone(), room.clone(), m.session.clone());
            let consistent = if joined {
                replay.insert(key)
            } else {
                replay.remove(&key)
            };
            if !consistent {
                let kind = if joined { "joined" } else { "left" };
                return Err(InvariantViolation {
                    name: invariant::LEAVE_ONCE_PER_JOIN,
                    detail: format!("{} reported as {kind} twice", m.session.0),
                });
            }
        }
        let is = after.state.visible();
        if replay != is {
            return Err(InvariantViolation {
                name: invariant::LEAVE_ONCE_PER_JOIN,
                detail: format!("reports lead to {replay:?} but the members are {is:?}"),
            });
        }
        let own = matches!(
            event,
            PresenceEvent::Join { .. } | PresenceEvent::Leave { .. }
        );
        let expected = before.seq + u64::from(own);
        if after.state.seq != expected {
            return Err(InvariantViolation {
                name: invariant::OWN_SEQ,
                detail: format!(
                    "seq went from {} to {} on {}",
                    before.seq,
                    after.state.seq,
                    Self::event_kind(event)
                ),
            });
        }
        Ok(())
    }
}

/// The small universe exploration draws from: tenant `acme` on node `a`, a remote node `b`
/// (incarnations 1 and 2), one room, two local sessions and one remote session.
pub mod explore {
    use arqon_proto::names::{RoomName, TenantId, UserId};

    use super::{
        DeltaOp, Entry, NodeId, NodeRef, Presence, PresenceEvent, PresenceState, Replication,
        SessionId,
    };
    use crate::machine::Explore;

    /// The tenant explored.
    pub const TENANT: &str = "acme";
    /// Another tenant, whose messages must be refused.
    pub const OTHER_TENANT: &str = "globex";
    /// The room explored.
    pub const ROOM: &str = "lobby";

    fn tenant(name: &str) -> Option<TenantId> {
        TenantId::parse(name).ok()
    }

    /// A node reference.
    pub fn node(id: &str, incarnation: u64) -> NodeRef {
        NodeRef {
            id: NodeId(id.to_owned()),
            incarnation,
        }
    }

    /// A session id.
    pub fn session(id: &str) -> SessionId {
        SessionId(id.to_owned())
    }

    /// Every event worth trying in `state` (empty if the fixed names do not parse).
    #[allow(clippy::too_many_lines)]
    pub fn events(machine: &Presence, state: &PresenceState) -> Vec<PresenceEvent> {
        let (Some(acme), Some(other), Ok(room), Ok(alice), Ok(bob)) = (
            tenant(TENANT),
            tenant(OTHER_TENANT),
            RoomName::parse(ROOM),
            UserId::parse("alice"),
            UserId::parse("bob"),
        ) else {
            return Vec::new();
        };
        let now_us = state.now_us();
        let later_us = now_us.saturating_add(machine.config.node_ttl_us / 2 + 1);
        let b_seq = state
            .replicas()
            .get(&NodeId("b".to_owned()))
            .map_or(0, |replica| replica.seq);
        let received = |msg| PresenceEvent::Received { msg, now_us };
        let delta = |from: NodeRef, seq, op| Replication::Delta {
            tenant: acme.clone(),
            from,
            seq,
            op,
        };
        let b_join = DeltaOp::Join {
            room: room.clone(),
            session: session("b1"),
            entry: Entry {
                user: bob.clone(),
                joined_at_us: now_us,
                meta: None,
            },
        };
        let b_leave = DeltaOp::Leave {
            room: room.clone(),
            session: session("b1"),
        };
        let mut events = Vec::new();
        for id in ["a1", "a2"] {
            events.push(PresenceEvent::Join {
                room: room.clone(),
                session: session(id),
                user: alice.clone(),
                meta: Some(format!("{{\"id\":\"{id}\"}}")),
                now_us,
            });
            events.push(PresenceEvent::Leave {
                room: room.clone(),
                session: session(id),
                now_us,
            });
        }
        events.extend([
            PresenceEvent::Tick { now_us: later_us },
            received(Replication::Heartbeat {
                tenant: acme.clone(),
                from: node("b", 1),
                seq: b_seq,
            }),
            received(Replication::Heartbeat {
                tenant: acme.clone(),
                from: node("b", 1),
                seq: b_seq + 1,
            }),
            received(delta(node("b", 1), b_seq + 1, b_join.clone())),
            received(delta(node("b", 1), b_seq + 1, b_leave)),
            received(delta(node("b", 1), b_seq + 2, b_join.clone())),
            received(delta(node("b", 1), b_seq, b_join.clone())),
            received(delta(node("b", 2), 1, b_join.clone())),
            received(Replication::SyncRequest {
                tenant: acme.clone(),
                from: node("b", 1),
                to: NodeId("a".to_owned()),
            }),
            received(Replication::SyncRequest {
                tenant: acme.clone(),
                from: node("b", 2),
                to: NodeId("c".to_owned()),
            }),
            received(Replication::SyncRequest {
                tenant: acme.clone(),
                from: node("b", 2),
                to: NodeId("a".to_owned()),
            }),
            received(Replication::Heartbeat {
                tenant: acme.clone(),
                from: node("b", 2),
                seq: 0,
            }),
            received(Replication::Sync {
                tenant: acme.clone(),
                from: node("b", 1),
                seq: b_seq + 1,
                entries: vec![(
                    room.clone(),
                    session("b1"),
                    Entry {
                        user: bob,
                        joined_at_us: now_us,
                        meta: None,
                    },
                )],
            }),
            received(Replication::Sync {
                tenant: acme.clone(),
                from: node("b", 1),
                seq: b_seq + 1,
                entries: Vec::new(),
            }),
            received(Replication::Heartbeat {
                tenant: other,
                from: node("b", 1),
                seq: 0,
            }),
            received(delta(node("a", 1), 1, b_join)),
            PresenceEvent::NodeDown {
                node: NodeId("b".to_owned()),
                now_us,
            },
            PresenceEvent::NodeDown {
                node: NodeId("c".to_owned()),
                now_us,
            },
        ]);
        events
    }

    impl Explore for Presence {
        fn initial(&self) -> PresenceState {
            // A literal that matches the grammar; `arqon-proto` tests the grammar.
            let tenant = TenantId::parse(TENANT).unwrap_or_else(|e| unreachable!("{e}"));
            PresenceState::new(tenant, node("a", 1))
        }

        fn alphabet(&self, state: &PresenceState) -> Vec<PresenceEvent> {
            events(self, state)
        }
    }
}

#[cfg(test)]
mod tests;

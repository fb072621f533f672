//! One simulated node: the shell that runs the real machines' effects, as the Shield and the Brain
//! do. Its sessions run `SessionMachine`, each tenant's presence replica runs `Presence`, the
//! governance tenant's writer lease runs `Lease`, and while it writes, its `ControlPlane` decides.
//!
//! A handler never decides what a machine decides: it turns an input into the machine's event,
//! steps the machine and executes the effects, by putting sends and timers into [`Ctx::out`] and
//! appending to the audit store. What a run checks as it goes (deliveries, presence shown to
//! sessions, audit appends) is reported to [`Ctx::violation`].

use std::collections::{BTreeMap, BTreeSet};

use arqon_core::audit::{AuditChain, AuditRecord};
use arqon_core::governance::checkpoint::{Checkpoint, Resumed};
use arqon_core::governance::{ControlPlane, GovEffect, GovEvent, Principal, Rules};
use arqon_core::lease::{Lease, LeaseEffect, LeaseEvent, LeaseState};
use arqon_core::limits::{Rate, Verdict as Admission};
use arqon_core::machine::Machine;
use arqon_core::presence::{
    Member, NodeId, NodeRef, Presence, PresenceConfig, PresenceEffect, PresenceEvent,
    PresenceState, Replication, SessionId,
};
use arqon_core::session::{
    Identity, PolicyVerdict, SessionConfig, SessionEffect, SessionEvent, SessionLimits,
    SessionMachine, SessionState,
};
use arqon_core::subject::Subject;
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{RoomName, TenantId, UserId};

use crate::cluster::forget_leave;

use super::config::{
    ACQUIRE_TIMEOUT_US, Bug, GOV_TENANT, GOV_TICK_US, PRESENCE_TICK_US, PRESENCE_TTL_US, SEC,
    TENANTS, lease_config,
};

/// Where a spine message goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// One node.
    Node(usize),
    /// Every node but the sender.
    Others(usize),
    /// Every node, the sender too (a NATS subscription of its own subject).
    All,
    /// The lease store (`JetStream` KV).
    Kv,
}

/// A request to the lease store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KvRequest {
    /// Create the key if absent.
    Acquire,
    /// Update the key if still at this revision.
    Renew(u64),
}

/// A message on the simulated spine.
#[derive(Clone, Debug)]
pub enum Msg {
    /// A presence replication message of one tenant.
    Presence(Replication),
    /// A room message: its subject, the publisher's real tenant (by the client table), its id.
    Room {
        /// The subject the publishing node built.
        subject: Subject,
        /// The publisher's tenant index, as the scenario knows it.
        tenant: usize,
        /// The message id.
        id: u64,
    },
    /// A governance message from a data plane (`gov.up`), or an operator command forwarded to
    /// the writer (`gov.cmd`): both are handled by the writer only.
    Gov {
        /// The sender.
        from: Principal,
        /// The command.
        command: GovernanceCommand,
    },
    /// A request to the lease store.
    KvAsk {
        /// The asking node.
        node: usize,
        /// Its run.
        incarnation: u64,
        /// The request's id (one in flight per node).
        id: u64,
        /// What it asks.
        request: KvRequest,
    },
    /// The store's answer: the granted revision, or `None` when refused.
    KvAnswer {
        /// The run that asked.
        incarnation: u64,
        /// The request's id.
        id: u64,
        /// The granted revision.
        granted: Option<u64>,
    },
}

/// A node timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timer {
    /// The lease machine asked to be ticked.
    Lease,
    /// The lease store did not answer request `id` in time.
    LeaseTimeout(u64),
    /// Presence heartbeat and expiry.
    Presence,
    /// The governance writer's tick.
    Gov,
}

/// What a handler asks the world to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send a message.
    Send(Dest, Msg),
    /// Fire `timer` on this node's current run at `at_us`.
    Timer(u64, Timer),
}

/// The tenant's audit chain as `JetStream` holds it: records, and the newest checkpoint (stored
/// with the record it follows, as the `Arqon-Checkpoint` header is).
#[derive(Debug, Default)]
pub struct AuditStore {
    /// The records.
    pub records: Vec<AuditRecord>,
    chain: AuditChain,
    /// The newest checkpoint.
    pub checkpoint: Option<Checkpoint>,
}

impl AuditStore {
    /// The `seq` of the last record (0 when empty).
    pub fn head(&self) -> u64 {
        self.chain.next_seq() - 1
    }
}

/// What a handler may touch besides its node.
pub struct Ctx<'a> {
    /// Simulated time, µs.
    pub now_us: u64,
    /// What to do after the handler.
    pub out: Vec<Action>,
    /// The governance tenant's audit chain.
    pub audit: &'a mut AuditStore,
    /// The first broken invariant seen during the step.
    pub violation: Option<(&'static str, String)>,
    /// The planted bug.
    pub bug: Bug,
    /// Room messages delivered, presence changes shown, audit records stored.
    pub counts: (u64, u64, u64),
    /// Client (session id → tenant index) as the scenario knows it.
    pub tenant_of: &'a BTreeMap<SessionId, usize>,
}

impl Ctx<'_> {
    fn send(&mut self, dest: Dest, msg: Msg) {
        self.out.push(Action::Send(dest, msg));
    }

    fn timer(&mut self, at_us: u64, timer: Timer) {
        self.out.push(Action::Timer(at_us, timer));
    }

    fn broken(&mut self, invariant: &'static str, detail: String) {
        if self.violation.is_none() {
            self.violation = Some((invariant, detail));
        }
    }
}

/// One client connection on a node.
#[derive(Clone, Debug)]
pub struct Conn {
    /// The tenant index (by the client table).
    pub tenant: usize,
    /// The session machine's state.
    pub state: SessionState,
    /// Subjects the node delivers to this session.
    pub subscribed: BTreeSet<Subject>,
    /// Per joined room, the members this session has been shown.
    pub views: BTreeMap<RoomName, BTreeSet<SessionId>>,
    /// The next request id.
    request: u64,
}

/// A simulated node.
#[derive(Debug)]
pub struct Node {
    /// Its index.
    pub index: usize,
    /// Whether it runs.
    pub up: bool,
    /// Its run number (grows on every restart).
    pub incarnation: u64,
    /// Cut from the spine (a partition): messages to and from it are lost.
    pub partitioned: bool,
    /// Each tenant's presence replica, by tenant index.
    pub presence: Vec<PresenceState>,
    /// Its sessions.
    pub conns: BTreeMap<SessionId, Conn>,
    /// The governance tenant's writer lease.
    pub lease: LeaseState,
    lease_pending: Option<u64>,
    lease_ids: u64,
    /// The control plane, while this node writes.
    pub control: Option<ControlPlane>,
    /// The audit head this writer believes in.
    head_seq: u64,
    /// The governance rules.
    rules: Rules,
    sessions_made: u64,
}

/// The node's presence name.
pub fn node_name(index: usize) -> NodeId {
    NodeId(format!("node-{index}"))
}

fn tenant_id(index: usize) -> Option<TenantId> {
    TENANTS.get(index).and_then(|t| TenantId::parse(t).ok())
}

fn session_machine() -> SessionMachine {
    SessionMachine {
        config: SessionConfig {
            heartbeat_timeout_us: 3_600 * SEC,
            heartbeat_interval_ms: 5_000,
            max_protocol_errors: 2,
            slow_consumer_threshold: 2,
        },
    }
}

fn presence_machine() -> Presence {
    Presence::new(PresenceConfig {
        node_ttl_us: PRESENCE_TTL_US,
    })
}

fn lease_machine() -> Lease {
    Lease {
        config: lease_config(),
    }
}

impl Node {
    /// A node that is down until [`Node::start`].
    pub fn new(index: usize, rules: Rules) -> Self {
        Self {
            index,
            up: false,
            incarnation: 0,
            partitioned: false,
            presence: Vec::new(),
            conns: BTreeMap::new(),
            lease: LeaseState::initial(),
            lease_pending: None,
            lease_ids: 0,
            control: None,
            head_seq: 0,
            rules,
            sessions_made: 0,
        }
    }

    /// Starts a new run: no sessions, fresh replicas, a follower lease.
    pub fn start(&mut self, ctx: &mut Ctx<'_>) {
        self.up = true;
        self.incarnation += 1;
        let me = NodeRef {
            id: node_name(self.index),
            incarnation: self.incarnation,
        };
        self.presence = (0..TENANTS.len())
            .filter_map(tenant_id)
            .map(|t| PresenceState::new(t, me.clone()))
            .collect();
        self.conns.clear();
        self.lease = LeaseState::initial();
        self.lease_pending = None;
        self.control = None;
        ctx.timer(ctx.now_us, Timer::Lease);
        ctx.timer(ctx.now_us, Timer::Presence);
    }

    /// Crashes: everything in memory is gone; nothing is sent.
    pub fn crash(&mut self) {
        self.up = false;
        self.conns.clear();
        self.control = None;
        self.lease = LeaseState::initial();
        self.lease_pending = None;
    }

    /// A timer of the current run fires.
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        match timer {
            Timer::Lease => self.lease_step(ctx, &LeaseEvent::Tick { now_us: ctx.now_us }),
            Timer::LeaseTimeout(id) => {
                if self.lease_pending == Some(id) {
                    self.lease_pending = None;
                    self.lease_step(ctx, &LeaseEvent::Unreachable { now_us: ctx.now_us });
                }
            }
            Timer::Presence => {
                for tenant in 0..self.presence.len() {
                    self.presence_step(ctx, tenant, &PresenceEvent::Tick { now_us: ctx.now_us });
                }
                ctx.timer(ctx.now_us + PRESENCE_TICK_US, Timer::Presence);
            }
            Timer::Gov => {
                if self.control.is_some() {
                    self.gov_step(ctx, GovEvent::Tick { at_us: ctx.now_us });
                    ctx.timer(ctx.now_us + GOV_TICK_US, Timer::Gov);
                }
            }
        }
    }

    /// A spine message arrives.
    pub fn on_msg(&mut self, ctx: &mut Ctx<'_>, msg: Msg) {
        match msg {
            Msg::Presence(replication) => {
                let tenant = TENANTS
                    .iter()
                    .position(|t| *t == replication.tenant().as_str());
                if let Some(tenant) = tenant {
                    let event = PresenceEvent::Received {
                        msg: replication,
                        now_us: ctx.now_us,
                    };
                    self.presence_step(ctx, tenant, &event);
                }
            }
            Msg::Room {
                subject,
                tenant,
                id,
            } => self.deliver(ctx, &subject, tenant, id),
            Msg::Gov { from, command } => {
                if self.control.is_some() {
                    let event = GovEvent::Message {
                        at_us: ctx.now_us,
                        from,
                        message: command,
                    };
                    self.gov_step(ctx, event);
                }
            }
            Msg::KvAnswer {
                incarnation,
                id,
                granted,
            } => {
                if incarnation == self.incarnation && self.lease_pending == Some(id) {
                    self.lease_pending = None;
                    let now_us = ctx.now_us;
                    let event = match granted {
                        Some(revision) => LeaseEvent::Granted { revision, now_us },
                        None => LeaseEvent::Taken { now_us },
                    };
                    self.lease_step(ctx, &event);
                }
            }
            Msg::KvAsk { .. } => {}
        }
    }

    fn deliver(&mut self, ctx: &mut Ctx<'_>, subject: &Subject, tenant: usize, id: u64) {
        let mut delivered = 0;
        let mut crossed = None;
        for (session, conn) in &self.conns {
            if !conn.subscribed.contains(subject) {
                continue;
            }
            delivered += 1;
            let own = tenant_id(conn.tenant);
            if conn.tenant != tenant || subject.tenant() != own.as_ref() {
                crossed = Some(format!(
                    "message {id} of tenant {} on {subject} delivered to {} of tenant {}",
                    TENANTS[tenant], session.0, TENANTS[conn.tenant]
                ));
            }
        }
        ctx.counts.0 += delivered;
        if let Some(detail) = crossed {
            ctx.broken("no-cross-tenant-delivery", detail);
        }
    }
}

// Sessions: the client's actions, through the session machine.
impl Node {
    /// A client of `tenant` (user `user`) connects; returns its session id.
    pub fn connect(&mut self, ctx: &mut Ctx<'_>, tenant: usize, user: &str) -> Option<SessionId> {
        self.sessions_made += 1;
        let number = self.sessions_made;
        let session = SessionId(format!("n{}-r{}-s{number}", self.index, self.incarnation));
        let identity = Identity {
            tenant: tenant_id(tenant)?,
            user: UserId::parse(user).ok()?,
            session: number,
        };
        let machine = session_machine();
        let upgraded = machine
            .step(
                &SessionState::Connecting,
                &SessionEvent::Upgrade { now_us: ctx.now_us },
            )
            .ok()?;
        let limits = SessionLimits {
            max_rooms: 8,
            max_payload_bytes: 1_024,
            publish: Rate {
                per_sec: 1_000,
                burst: 1_000,
            },
        };
        let active = machine
            .step(
                &upgraded.state,
                &SessionEvent::TokenValid {
                    identity,
                    expires_us: u64::MAX / 2,
                    limits,
                    admission: Admission::Admit,
                    now_us: ctx.now_us,
                },
            )
            .ok()?;
        let conn = Conn {
            tenant,
            state: active.state,
            subscribed: BTreeSet::new(),
            views: BTreeMap::new(),
            request: 0,
        };
        self.conns.insert(session.clone(), conn);
        Some(session)
    }

    /// The session joins `room`.
    pub fn join(&mut self, ctx: &mut Ctx<'_>, session: &SessionId, room: &RoomName) {
        let now_us = ctx.now_us;
        let event = |request| SessionEvent::Join {
            room: room.clone(),
            request,
            since: None,
            now_us,
        };
        self.session_step(ctx, session, event);
    }

    /// The session leaves `room`.
    pub fn leave(&mut self, ctx: &mut Ctx<'_>, session: &SessionId, room: &RoomName) {
        let now_us = ctx.now_us;
        let event = |request| SessionEvent::Leave {
            room: room.clone(),
            request,
            now_us,
        };
        self.session_step(ctx, session, event);
    }

    /// The session publishes to `room`: the budget and the policy allow it.
    pub fn publish(&mut self, ctx: &mut Ctx<'_>, session: &SessionId, room: &RoomName) {
        let now_us = ctx.now_us;
        let event = |request| SessionEvent::Publish {
            room: room.clone(),
            request,
            payload_len: 16,
            now_us,
        };
        self.session_step(ctx, session, event);
    }

    /// The client closes its socket.
    pub fn disconnect(&mut self, ctx: &mut Ctx<'_>, session: &SessionId) {
        self.session_step(ctx, session, |_| SessionEvent::SocketClosed);
        self.conns.remove(session);
    }

    fn session_step(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: &SessionId,
        event: impl Fn(u64) -> SessionEvent,
    ) {
        let Some(conn) = self.conns.get_mut(session) else {
            return;
        };
        conn.request += 1;
        let mut queue = vec![event(conn.request)];
        while let Some(event) = queue.pop() {
            let Some(conn) = self.conns.get_mut(session) else {
                return;
            };
            let Ok(step) = session_machine().step(&conn.state, &event) else {
                continue;
            };
            conn.state = step.state;
            for effect in step.effects {
                if let Some(next) = self.session_effect(ctx, session, effect) {
                    queue.push(next);
                }
            }
        }
    }

    /// Executes one session effect; returns the event that answers it at once, if any (the
    /// tenant budget and the policy chain both allow, in the simulation).
    fn session_effect(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: &SessionId,
        effect: SessionEffect,
    ) -> Option<SessionEvent> {
        let now_us = ctx.now_us;
        let identity = self.conns.get(session).and_then(|c| match &c.state {
            SessionState::Active(live) => Some(live.identity.clone()),
            _ => None,
        });
        match effect {
            SessionEffect::ChargeTenant { room, request } => Some(SessionEvent::TenantBudget {
                room,
                request,
                verdict: Ok(()),
                now_us,
            }),
            SessionEffect::RunPolicy { room, request } => Some(SessionEvent::PolicyVerdict {
                room,
                request,
                verdict: PolicyVerdict::Allow,
                now_us,
            }),
            SessionEffect::Publish { room, stamp, .. } => {
                let tenant = ctx.tenant_of.get(session).copied()?;
                let subject = Subject::room(&stamp.tenant, &room);
                let id = now_us ^ (stamp.session << 40);
                ctx.send(
                    Dest::All,
                    Msg::Room {
                        subject,
                        tenant,
                        id,
                    },
                );
                None
            }
            SessionEffect::Subscribe { room, .. } => {
                let identity = identity?;
                let conn = self.conns.get_mut(session)?;
                conn.subscribed
                    .insert(Subject::room(&identity.tenant, &room));
                None
            }
            SessionEffect::Unsubscribe { room } => {
                let identity = identity?;
                let conn = self.conns.get_mut(session)?;
                conn.subscribed
                    .remove(&Subject::room(&identity.tenant, &room));
                None
            }
            SessionEffect::PresenceJoin { room } => {
                self.presence_join(ctx, session, &room, identity?.user);
                None
            }
            SessionEffect::PresenceLeave { room } => {
                let tenant = self.conns.get_mut(session).map(|conn| {
                    conn.views.remove(&room);
                    conn.tenant
                })?;
                let event = PresenceEvent::Leave {
                    room,
                    session: session.clone(),
                    now_us,
                };
                self.presence_step(ctx, tenant, &event);
                None
            }
            _ => None,
        }
    }

    fn presence_join(
        &mut self,
        ctx: &mut Ctx<'_>,
        session: &SessionId,
        room: &RoomName,
        user: UserId,
    ) {
        let Some(tenant) = self.conns.get(session).map(|c| c.tenant) else {
            return;
        };
        let event = PresenceEvent::Join {
            room: room.clone(),
            session: session.clone(),
            user,
            meta: None,
            now_us: ctx.now_us,
        };
        self.presence_step(ctx, tenant, &event);
        // The joiner is shown the room as its node sees it now (the snapshot of a join).
        let snapshot: BTreeSet<SessionId> = self.presence[tenant]
            .visible()
            .into_iter()
            .filter(|(_, r, _)| r == room)
            .map(|(_, _, s)| s)
            .collect();
        if let Some(conn) = self.conns.get_mut(session) {
            conn.views.insert(room.clone(), snapshot);
        }
    }
}

// Presence: the replica of each tenant, and what its changes show to local sessions.
impl Node {
    fn presence_step(&mut self, ctx: &mut Ctx<'_>, tenant: usize, event: &PresenceEvent) {
        let event = match ctx.bug {
            Bug::PresenceForgetsLeaves => forget_leave(event),
            _ => event.clone(),
        };
        let Some(state) = self.presence.get(tenant) else {
            return;
        };
        let Ok(step) = presence_machine().step(state, &event) else {
            return;
        };
        self.presence[tenant] = step.state;
        for effect in step.effects {
            match effect {
                PresenceEffect::Broadcast(msg) => {
                    ctx.send(Dest::Others(self.index), Msg::Presence(msg));
                }
                PresenceEffect::SendTo { to, msg } => {
                    if let Some(peer) = to.0.strip_prefix("node-").and_then(|n| n.parse().ok()) {
                        ctx.send(Dest::Node(peer), Msg::Presence(msg));
                    }
                }
                PresenceEffect::PresenceUpdate { room, member } => {
                    self.show(ctx, tenant, &room, &member, true);
                }
                PresenceEffect::PresenceLeave { room, member } => {
                    self.show(ctx, tenant, &room, &member, false);
                }
            }
        }
    }

    /// Shows a member's join (or update) or leave to the local sessions of the tenant in the
    /// room. A leave of a member a session was not shown as present is a flapping leave.
    fn show(
        &mut self,
        ctx: &mut Ctx<'_>,
        tenant: usize,
        room: &RoomName,
        member: &Member,
        joined: bool,
    ) {
        let mut flapped = None;
        for (session, conn) in &mut self.conns {
            if conn.tenant != tenant {
                continue;
            }
            let Some(view) = conn.views.get_mut(room) else {
                continue;
            };
            ctx.counts.1 += 1;
            if joined {
                view.insert(member.session.clone());
            } else if !view.remove(&member.session) {
                flapped = Some(format!(
                    "{} was shown a leave of {} in {room} without its join",
                    session.0, member.session.0
                ));
            }
        }
        if let Some(detail) = flapped {
            ctx.broken("presence-one-leave-per-join", detail);
        }
    }
}

// Governance: the writer lease, and the control plane while it writes.
impl Node {
    fn lease_step(&mut self, ctx: &mut Ctx<'_>, event: &LeaseEvent) {
        if let (Bug::LeaseCountsFromAnswer, LeaseEvent::Granted { now_us, .. }) = (ctx.bug, event) {
            match &mut self.lease {
                LeaseState::Acquiring { sent_us } | LeaseState::Renewing { sent_us, .. } => {
                    *sent_us = *now_us;
                }
                LeaseState::Follower { .. } | LeaseState::Leader { .. } => {}
            }
        }
        let Ok(step) = lease_machine().step(&self.lease, event) else {
            return;
        };
        self.lease = step.state;
        for effect in step.effects {
            match effect {
                LeaseEffect::Acquire => {
                    self.ask(ctx, KvRequest::Acquire, ctx.now_us + ACQUIRE_TIMEOUT_US);
                }
                LeaseEffect::Renew {
                    revision,
                    answer_by_us,
                } => self.ask(ctx, KvRequest::Renew(revision), answer_by_us),
                LeaseEffect::StartWriting => self.start_writing(ctx),
                LeaseEffect::StopWriting => self.control = None,
                LeaseEffect::ScheduleTick { at_us } => ctx.timer(at_us, Timer::Lease),
            }
        }
    }

    fn ask(&mut self, ctx: &mut Ctx<'_>, request: KvRequest, answer_by_us: u64) {
        self.lease_ids += 1;
        let id = self.lease_ids;
        self.lease_pending = Some(id);
        let msg = Msg::KvAsk {
            node: self.index,
            incarnation: self.incarnation,
            id,
            request,
        };
        ctx.send(Dest::Kv, msg);
        ctx.timer(answer_by_us, Timer::LeaseTimeout(id));
    }

    fn start_writing(&mut self, ctx: &mut Ctx<'_>) {
        let Some(tenant) = tenant_id(GOV_TENANT) else {
            return;
        };
        let stored = ctx.audit.checkpoint.clone().map(Ok);
        let (control, resumed) =
            ControlPlane::resume(tenant, self.rules.clone(), stored, ctx.audit.head());
        if let Resumed::Refused(error) = resumed {
            ctx.broken(
                "control-plane-resumes",
                format!("node {}: {error}", self.index),
            );
        }
        self.control = Some(control);
        self.head_seq = ctx.audit.head();
        ctx.timer(ctx.now_us + GOV_TICK_US, Timer::Gov);
    }

    fn gov_step(&mut self, ctx: &mut Ctx<'_>, event: GovEvent) {
        let Some(effects) = self.control.as_mut().map(|control| control.handle(event)) else {
            return;
        };
        let last_audit = effects
            .iter()
            .rposition(|e| matches!(e, GovEffect::Audit(_)));
        for (index, effect) in effects.into_iter().enumerate() {
            let GovEffect::Audit(entry) = effect else {
                continue;
            };
            // The append names the head this writer holds, as `Nats-Expected-Last-Subject-
            // Sequence` does; another writer's record in between would fork the chain.
            if ctx.audit.head() != self.head_seq {
                ctx.broken(
                    "audit-chain-never-forks",
                    format!(
                        "node {} appends after seq {} but the chain ends at {}",
                        self.index,
                        self.head_seq,
                        ctx.audit.head()
                    ),
                );
                self.control = None;
                return;
            }
            let record = ctx.audit.chain.prepare(entry);
            ctx.audit.chain.commit(&record);
            if Some(index) == last_audit {
                ctx.audit.checkpoint = self.control.as_ref().map(|c| c.checkpoint(record.seq));
            }
            self.head_seq = record.seq;
            ctx.audit.records.push(record);
            ctx.counts.2 += 1;
        }
    }
}

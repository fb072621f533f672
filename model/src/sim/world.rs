//! The simulated world and its scheduler: a queue of timed events, one seeded random source for
//! the scenario, the faults and every delay, the spine between the nodes, the lease store, and
//! the clients, the data plane and the operator acting on the nodes.
//!
//! Events at the same instant run in the order they were scheduled; nothing reads a clock or an
//! unseeded random source, so [`run`] on the same seed and config does the same steps, in the
//! same order, and reports the same digest.

use std::collections::{BTreeMap, BTreeSet};

use arqon_core::governance::{GovRole, Principal, Rules};
use arqon_core::presence::SessionId;
use arqon_core::rollout::RolloutConfig;
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{RoomName, UserId};
use arqon_proto::v1;
use rand::Rng as _;
use rand::SeedableRng as _;
use rand_chacha::ChaCha8Rng;

use super::config::{MS, ROOMS, Report, SEC, SimConfig, Stats, TENANTS, Violation, lease_config};
use super::invariants::{self, Broken};
use super::node::{Action, AuditStore, Ctx, Dest, KvRequest, Msg, Node, Timer};

/// Runs `seed` under `config` to its end or its first broken invariant.
pub fn run(seed: u64, config: &SimConfig) -> Report {
    World::new(seed, config.clone(), false).run().0
}

/// The same run, and a line per event: what a failing seed's replay prints.
pub fn run_traced(seed: u64, config: &SimConfig) -> (Report, Vec<String>) {
    World::new(seed, config.clone(), true).run()
}

#[derive(Debug)]
enum Event {
    /// A spine message reaches a node (`Some`) or the lease store (`None`).
    Deliver(Option<usize>, Msg),
    /// A node timer of run `incarnation`.
    Timer(usize, u64, Timer),
    /// A client acts.
    Client(usize),
    Crash(usize),
    Restart(usize),
    PartitionStart(usize),
    PartitionEnd(usize),
    StallStart(usize),
    StallEnd(usize),
    /// The data plane sends a proposal.
    DataPlane,
    /// The operator sends a command through some node.
    Operator,
    /// Faults stop; every node comes back, every client reconnects.
    Quiet,
}

impl Event {
    fn code(&self) -> (u64, u64) {
        match self {
            Self::Deliver(to, _) => (1, to.map_or(99, |n| n as u64)),
            Self::Timer(node, incarnation, _) => (2, (*node as u64) << 8 | incarnation),
            Self::Client(c) => (3, *c as u64),
            Self::Crash(n) => (4, *n as u64),
            Self::Restart(n) => (5, *n as u64),
            Self::PartitionStart(n) => (6, *n as u64),
            Self::PartitionEnd(n) => (7, *n as u64),
            Self::DataPlane => (8, 0),
            Self::Operator => (9, 0),
            Self::Quiet => (10, 0),
            Self::StallStart(n) => (11, *n as u64),
            Self::StallEnd(n) => (12, *n as u64),
        }
    }
}

#[derive(Debug)]
struct Client {
    tenant: usize,
    user: String,
    conn: Option<(usize, SessionId)>,
    rooms: BTreeSet<RoomName>,
    ever_connected: bool,
}

/// The lease store's key: holder node, revision, expiry.
#[derive(Debug, Default)]
struct Kv {
    key: Option<(usize, u64, u64)>,
    revision: u64,
}

struct World {
    config: SimConfig,
    seed: u64,
    rng: ChaCha8Rng,
    now_us: u64,
    seq: u64,
    quiet: bool,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    /// Nodes whose messages are late for now.
    stalled: Vec<bool>,
    audit: AuditStore,
    kv: Kv,
    clients: Vec<Client>,
    tenant_of: BTreeMap<SessionId, usize>,
    stats: Stats,
    digest: u64,
    trace: Option<Vec<String>>,
    broken: Option<Broken>,
    writer: Option<usize>,
    proposals: u64,
    catalog: u64,
}

fn rules(rng: &mut ChaCha8Rng) -> Rules {
    Rules {
        min_confidence: 0.8,
        max_concurrent_rollouts: rng.gen_range(1..=2),
        auto_approve: rng.gen_bool(0.5),
        default_rollout: RolloutConfig {
            initial_bp: 500,
            increment_bp_per_minute: 3_000,
            max_bp: 5_000,
        },
    }
}

impl World {
    fn new(seed: u64, config: SimConfig, traced: bool) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let rules = rules(&mut rng);
        let nodes = (0..config.nodes)
            .map(|i| Node::new(i, rules.clone()))
            .collect();
        let clients = (0..config.clients)
            .map(|i| Client {
                tenant: i % TENANTS.len(),
                user: format!("user-{i}"),
                conn: None,
                rooms: BTreeSet::new(),
                ever_connected: false,
            })
            .collect();
        let stalled = vec![false; config.nodes];
        Self {
            config,
            seed,
            rng,
            now_us: 0,
            seq: 0,
            quiet: false,
            queue: BTreeMap::new(),
            stalled,
            nodes,
            audit: AuditStore::default(),
            kv: Kv::default(),
            clients,
            tenant_of: BTreeMap::new(),
            stats: Stats::default(),
            digest: 0xcbf2_9ce4_8422_2325,
            trace: traced.then(Vec::new),
            broken: None,
            writer: None,
            proposals: 0,
            catalog: 0,
        }
    }

    fn at(&mut self, at_us: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at_us, self.seq), event);
    }

    fn end_us(&self) -> u64 {
        self.config.horizon_us + self.config.quiet_us
    }

    /// The scenario: every node starts at 0; clients, the data plane and the operator begin
    /// within the first second; crashes and partitions at random times before the horizon.
    fn setup(&mut self) {
        for node in 0..self.config.nodes {
            self.on_node(node, Node::start);
        }
        for client in 0..self.clients.len() {
            let at = self.rng.gen_range(0..SEC);
            self.at(at, Event::Client(client));
        }
        self.at(SEC, Event::DataPlane);
        self.at(SEC + 500 * MS, Event::Operator);
        let horizon = self.config.horizon_us;
        let crashes = self.rng.gen_range(0..=self.config.faults.crashes);
        for _ in 0..crashes {
            let node = self.rng.gen_range(0..self.config.nodes);
            let at = self
                .rng
                .gen_range(2 * SEC..horizon.saturating_sub(5 * SEC).max(3 * SEC));
            self.at(at, Event::Crash(node));
        }
        let partitions = self.rng.gen_range(0..=self.config.faults.partitions);
        for _ in 0..partitions {
            let node = self.rng.gen_range(0..self.config.nodes);
            let at = self.rng.gen_range(2 * SEC..horizon.max(3 * SEC));
            self.at(at, Event::PartitionStart(node));
        }
        let stalls = self.rng.gen_range(0..=self.config.faults.stalls);
        for _ in 0..stalls {
            let node = self.rng.gen_range(0..self.config.nodes);
            let at = self.rng.gen_range(2 * SEC..horizon.max(3 * SEC));
            self.at(at, Event::StallStart(node));
        }
        self.at(horizon, Event::Quiet);
    }

    fn run(mut self) -> (Report, Vec<String>) {
        self.setup();
        let end = self.end_us();
        let mut violation = None;
        while let Some(((at, _), event)) = self.queue.pop_first() {
            if at > end {
                break;
            }
            self.now_us = at;
            self.stats.steps += 1;
            self.fold(at, event.code());
            if let Some(trace) = &mut self.trace {
                trace.push(format!("{at:>12} {event:?}"));
            }
            self.handle(event);
            self.note_writer();
            let broken = self
                .broken
                .take()
                .or_else(|| invariants::after_step(self.now_us, &self.nodes, &self.tenant_of));
            if let Some(broken) = broken {
                violation = Some(broken);
                break;
            }
        }
        if violation.is_none() {
            violation = invariants::at_end(&self.nodes, &self.audit);
        }
        self.stats.audit_records = self.audit.records.len() as u64;
        let violation = violation.map(|(invariant, detail)| Violation {
            step: self.stats.steps,
            at_us: self.now_us,
            invariant,
            detail,
        });
        if let (Some(trace), Some(v)) = (&mut self.trace, &violation) {
            trace.push(format!(
                "BROKEN {} at {} µs: {}",
                v.invariant, v.at_us, v.detail
            ));
        }
        let report = Report {
            seed: self.seed,
            digest: self.digest,
            violation,
            stats: self.stats,
        };
        (report, self.trace.unwrap_or_default())
    }

    /// FNV-1a over each event's time and kind: the run's fingerprint.
    fn fold(&mut self, at: u64, (kind, target): (u64, u64)) {
        for word in [at, kind, target] {
            for byte in word.to_le_bytes() {
                self.digest ^= u64::from(byte);
                self.digest = self.digest.wrapping_mul(0x0100_0000_01b3);
            }
        }
    }

    fn note_writer(&mut self) {
        let writer = self
            .nodes
            .iter()
            .find(|n| n.up && n.control.is_some())
            .map(|n| n.index);
        if writer.is_some() && writer != self.writer {
            if self.writer.is_some() {
                self.stats.failovers += 1;
            }
            self.writer = writer;
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver(Some(node), msg) => {
                if self.nodes[node].up && !self.nodes[node].partitioned {
                    self.on_node(node, |node, ctx| node.on_msg(ctx, msg));
                }
            }
            Event::Deliver(None, msg) => self.kv_answer(&msg),
            Event::Timer(node, incarnation, timer) => {
                if self.nodes[node].up && self.nodes[node].incarnation == incarnation {
                    self.on_node(node, |node, ctx| node.on_timer(ctx, timer));
                }
            }
            Event::Client(client) => self.client_acts(client),
            Event::Crash(node) => self.crash(node),
            Event::Restart(node) => {
                if !self.nodes[node].up {
                    self.on_node(node, Node::start);
                }
            }
            Event::PartitionStart(node) => {
                if !self.quiet && !self.nodes[node].partitioned {
                    self.stats.partitions += 1;
                    self.nodes[node].partitioned = true;
                    let (low, high) = self.config.faults.partition_us;
                    let until = self.now_us + self.rng.gen_range(low..=high);
                    self.at(until, Event::PartitionEnd(node));
                }
            }
            Event::PartitionEnd(node) => self.nodes[node].partitioned = false,
            Event::StallStart(node) => {
                // Most stalls hit the writer: the node whose lateness the lease must survive.
                let node = match self.writer {
                    Some(writer) if self.rng.gen_bool(0.7) => writer,
                    _ => node,
                };
                if !self.quiet && !self.stalled[node] {
                    self.stats.stalls += 1;
                    self.stalled[node] = true;
                    let (low, high) = self.config.faults.stall_us;
                    let until = self.now_us + self.rng.gen_range(low..=high);
                    self.at(until, Event::StallEnd(node));
                }
            }
            Event::StallEnd(node) => self.stalled[node] = false,
            Event::DataPlane => self.data_plane(),
            Event::Operator => self.operator(),
            Event::Quiet => self.go_quiet(),
        }
    }

    /// Runs `f` on node `index` with a context over the shared stores, then executes what it
    /// asked for.
    fn on_node<R>(&mut self, index: usize, f: impl FnOnce(&mut Node, &mut Ctx<'_>) -> R) -> R {
        let node = &mut self.nodes[index];
        let mut ctx = Ctx {
            now_us: self.now_us,
            out: Vec::new(),
            audit: &mut self.audit,
            violation: None,
            bug: self.config.bug,
            counts: (0, 0, 0),
            tenant_of: &self.tenant_of,
        };
        let result = f(node, &mut ctx);
        let incarnation = node.incarnation;
        let Ctx {
            out,
            violation,
            counts,
            ..
        } = ctx;
        self.stats.delivered += counts.0;
        self.stats.presence_events += counts.1;
        if self.broken.is_none() {
            self.broken = violation;
        }
        for action in out {
            match action {
                Action::Send(dest, msg) => self.send(index, dest, &msg),
                Action::Timer(at, timer) => self.at(at, Event::Timer(index, incarnation, timer)),
            }
        }
        result
    }

    /// The delay of a message between `ends` (a node, or the store for `None`).
    fn delay(&mut self, ends: [Option<usize>; 2]) -> u64 {
        let faults = &self.config.faults;
        let spike = !self.quiet && self.rng.gen_range(0..1_000) < faults.spike_per_mille;
        let (low, high) = if spike {
            faults.spike_us
        } else {
            faults.delay_us
        };
        let stalled = ends.iter().flatten().any(|&n| self.stalled[n]);
        let (late_low, late_high) = faults.stall_delay_us;
        let late = if stalled {
            self.rng.gen_range(late_low..=late_high)
        } else {
            0
        };
        self.rng.gen_range(low..=high) + late
    }

    fn lost(&mut self, ends: [Option<usize>; 2]) -> bool {
        let cut = ends.iter().flatten().any(|&n| self.nodes[n].partitioned);
        let lost = cut
            || (!self.quiet && self.rng.gen_range(0..1_000) < self.config.faults.loss_per_mille);
        if lost {
            self.stats.lost += 1;
        }
        lost
    }

    fn send(&mut self, from: usize, dest: Dest, msg: &Msg) {
        let targets: Vec<Option<usize>> = match dest {
            Dest::Node(n) => vec![Some(n)],
            Dest::Others(me) => (0..self.config.nodes)
                .filter(|&n| n != me)
                .map(Some)
                .collect(),
            Dest::All => (0..self.config.nodes).map(Some).collect(),
            Dest::Kv => vec![None],
        };
        for to in targets {
            if self.lost([Some(from), to]) {
                continue;
            }
            let at = self.now_us + self.delay([Some(from), to]);
            self.at(at, Event::Deliver(to, msg.clone()));
        }
    }

    /// The lease store (`JetStream` KV: create-if-absent, update-if-revision, expiring keys)
    /// answers a request.
    fn kv_answer(&mut self, msg: &Msg) {
        let &Msg::KvAsk {
            node,
            incarnation,
            id,
            request,
        } = msg
        else {
            return;
        };
        if self
            .kv
            .key
            .is_some_and(|(_, _, expires)| expires <= self.now_us)
        {
            self.kv.key = None;
        }
        let granted = match (request, self.kv.key) {
            (KvRequest::Acquire, None) => true,
            (KvRequest::Renew(revision), Some((holder, current, _))) => {
                holder == node && current == revision
            }
            _ => false,
        };
        let granted = granted.then(|| {
            self.kv.revision += 1;
            let expires = self.now_us + lease_config().ttl_us;
            self.kv.key = Some((node, self.kv.revision, expires));
            self.kv.revision
        });
        if self.lost([None, Some(node)]) {
            return;
        }
        let at = self.now_us + self.delay([None, Some(node)]);
        let answer = Msg::KvAnswer {
            incarnation,
            id,
            granted,
        };
        self.at(at, Event::Deliver(Some(node), answer));
    }

    fn crash(&mut self, node: usize) {
        if self.quiet || !self.nodes[node].up {
            return;
        }
        self.stats.crashes += 1;
        self.nodes[node].crash();
        for client in 0..self.clients.len() {
            if self.clients[client]
                .conn
                .as_ref()
                .is_some_and(|(n, _)| *n == node)
            {
                self.clients[client].conn = None;
                let at = self.now_us + self.rng.gen_range(100 * MS..1_500 * MS);
                self.at(at, Event::Client(client));
            }
        }
        let back = self.now_us + self.rng.gen_range(SEC..8 * SEC);
        self.at(back, Event::Restart(node));
    }

    fn go_quiet(&mut self) {
        self.quiet = true;
        for node in 0..self.config.nodes {
            self.nodes[node].partitioned = false;
            self.stalled[node] = false;
            if !self.nodes[node].up {
                self.on_node(node, Node::start);
            }
        }
        for client in 0..self.clients.len() {
            if self.clients[client].conn.is_none() {
                let at = self.now_us + self.rng.gen_range(0..SEC);
                self.at(at, Event::Client(client));
            }
        }
    }

    fn random_up_node(&mut self) -> Option<usize> {
        let up: Vec<usize> = (0..self.config.nodes)
            .filter(|&n| self.nodes[n].up)
            .collect();
        if up.is_empty() {
            return None;
        }
        Some(up[self.rng.gen_range(0..up.len())])
    }
}

// The actors outside the nodes: clients, the data plane, the operator.
impl World {
    fn client_acts(&mut self, client: usize) {
        match self.clients[client].conn.clone() {
            None => self.reconnect(client),
            Some(_) if self.quiet => {}
            Some((node, session)) => {
                let joined: Vec<RoomName> = self.clients[client].rooms.iter().cloned().collect();
                let roll = self.rng.gen_range(0..100);
                let some_joined = (!joined.is_empty())
                    .then(|| joined[self.rng.gen_range(0..joined.len())].clone());
                let any_room = RoomName::parse(ROOMS[self.rng.gen_range(0..ROOMS.len())]).ok();
                match (roll, some_joined, any_room) {
                    (0..35, Some(room), _) => {
                        self.on_node(node, |n, ctx| n.publish(ctx, &session, &room));
                    }
                    (35..55, _, Some(room)) => {
                        self.clients[client].rooms.insert(room.clone());
                        self.on_node(node, |n, ctx| n.join(ctx, &session, &room));
                    }
                    (55..70, Some(room), _) => {
                        self.clients[client].rooms.remove(&room);
                        self.on_node(node, |n, ctx| n.leave(ctx, &session, &room));
                    }
                    (70..78, _, _) => {
                        self.on_node(node, |n, ctx| n.disconnect(ctx, &session));
                        self.clients[client].conn = None;
                    }
                    _ => {}
                }
            }
        }
        if !self.quiet || self.clients[client].conn.is_none() {
            let at = self.now_us + self.rng.gen_range(200 * MS..2 * SEC);
            self.at(at, Event::Client(client));
        }
    }

    /// Connects the client to a live node and joins its rooms again.
    fn reconnect(&mut self, client: usize) {
        let Some(node) = self.random_up_node() else {
            return;
        };
        let (tenant, user) = (
            self.clients[client].tenant,
            self.clients[client].user.clone(),
        );
        let Some(session) = self.on_node(node, |n, ctx| n.connect(ctx, tenant, &user)) else {
            return;
        };
        self.tenant_of.insert(session.clone(), tenant);
        if self.clients[client].ever_connected {
            self.stats.reconnects += 1;
        }
        self.clients[client].ever_connected = true;
        self.clients[client].conn = Some((node, session.clone()));
        let rooms: Vec<RoomName> = self.clients[client].rooms.iter().cloned().collect();
        for room in rooms {
            self.on_node(node, |n, ctx| n.join(ctx, &session, &room));
        }
    }

    /// A data plane of the governance tenant proposes, through some node (`gov.up`).
    fn data_plane(&mut self) {
        if self.quiet {
            return;
        }
        self.proposals += 1;
        let proposal = v1::Proposal {
            id: format!("p{}", self.proposals),
            timestamp_us: self.now_us,
            variant_id: Some(self.rng.gen_range(1..10)),
            reason: "simulated".into(),
            confidence: self.rng.gen_range(0.5..1.0),
            ..v1::Proposal::default()
        };
        if let (Some(node), Ok(user)) = (self.random_up_node(), UserId::parse("agent-1")) {
            let from = Principal {
                user,
                role: GovRole::DataPlane,
            };
            let msg = Msg::Gov {
                from,
                command: GovernanceCommand::Proposal(proposal),
            };
            self.send(node, Dest::All, &msg);
        }
        let at = self.now_us + self.rng.gen_range(SEC..4 * SEC);
        self.at(at, Event::DataPlane);
    }

    /// The operator acts through some node; a node that is not the writer forwards the command
    /// (`gov.cmd`), and only the writer handles it.
    fn operator(&mut self) {
        if self.quiet {
            return;
        }
        let command = self.operator_command();
        if let (Some(node), Ok(user)) = (self.random_up_node(), UserId::parse("ops-1")) {
            let from = Principal {
                user,
                role: GovRole::Operator,
            };
            self.send(node, Dest::All, &Msg::Gov { from, command });
        }
        let at = self.now_us + self.rng.gen_range(SEC..3 * SEC);
        self.at(at, Event::Operator);
    }

    fn operator_command(&mut self) -> GovernanceCommand {
        let recent = self
            .rng
            .gen_range(self.proposals.saturating_sub(3)..=self.proposals);
        let enforce = |action| {
            GovernanceCommand::Enforce(v1::Enforce {
                reason: "simulated".into(),
                action: Some(action),
            })
        };
        match self.rng.gen_range(0..100) {
            0..45 => GovernanceCommand::Approval(v1::Approval {
                proposal_id: format!("p{recent}"),
                proposal_digest: String::new(),
                rollout: Some(v1::RolloutConfig {
                    initial_percent: self.rng.gen_range(1.0..20.0),
                    increment_per_minute: self.rng.gen_range(10.0..200.0),
                    max_percent: self.rng.gen_range(20.0..100.0),
                }),
            }),
            45..60 => GovernanceCommand::Rejection(v1::Rejection {
                proposal_id: format!("p{recent}"),
                reason: "simulated".into(),
            }),
            60..72 => enforce(v1::enforce::Action::PauseAdaptation(v1::PauseAdaptation {})),
            72..86 => enforce(v1::enforce::Action::ResumeAdaptation(
                v1::ResumeAdaptation {},
            )),
            86..90 => enforce(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {})),
            _ => {
                self.catalog += 1;
                GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
                    version: self.catalog,
                    source_uri: format!("https://catalog.example.com/v{}.json", self.catalog),
                })
            }
        }
    }
}

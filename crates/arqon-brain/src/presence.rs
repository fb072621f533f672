//! The presence driver: runs one `arqon_core::presence` machine per tenant on this node and
//! executes its effects over the Spine and towards this node's sessions.
//!
//! `specs/presence.md` ("Driver"). It decides nothing: joins and leaves from the Shield, ticks of
//! the node heartbeat and replication messages from the tenant's presence subject become
//! [`PresenceEvent`]s with the real clock; [`PresenceEffect::Broadcast`] and
//! [`PresenceEffect::SendTo`] are published on `Subject::presence(tenant)`;
//! [`PresenceEffect::PresenceUpdate`] and [`PresenceEffect::PresenceLeave`] go to the local
//! members of the room through [`PresenceDelivery`], which the Shield implements.
//!
//! Everything runs in one task per node, in arrival order, so a member list read through
//! [`PresenceDriver::list`] reflects every join and leave handed in before it, and its reply is
//! ordered with the notices around it. Replication messages are serde JSON (node to node only;
//! clients never see them).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_core::presence::{
    Member, MemberCursor, MemberPage, NodeRef, Presence, PresenceConfig, PresenceEffect,
    PresenceEvent, PresenceRejection, PresenceState, Replication, SessionId,
};
use arqon_core::subject::Subject;
use arqon_proto::names::{RoomName, TenantId, UserId};
use arqon_spine::{Bytes, Headers, Spine};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::trace_headers::{continue_from, with_current_trace};

/// A boxed future, as [`PresenceDelivery`] returns.
pub type DeliveryFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// What happened to a member, for [`PresenceDelivery::deliver`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// `PRESENCE_UPDATE` (kind `JOIN`).
    Joined,
    /// `PRESENCE_LEAVE`.
    Left,
}

/// Delivers presence notices to this node's sessions in a room (the Shield implements it).
pub trait PresenceDelivery: Send + Sync + 'static {
    /// Sends `notice` about `member` to every local session of `tenant` in `room`.
    fn deliver<'a>(
        &'a self,
        tenant: &'a TenantId,
        room: &'a RoomName,
        notice: Notice,
        member: &'a Member,
    ) -> DeliveryFuture<'a>;
}

/// Called with the pages of a member list: once, or twice for an early read of a tenant this node
/// is still warming up (what it knows at once, then the list once it is warm).
pub type ListReply = Box<dyn FnMut(Vec<MemberPage>) + Send>;

/// Which part of a room's member list to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Start after this member (exclusive); `None` from the start.
    pub after: Option<MemberCursor>,
    /// Members per page (0 is read as 1).
    pub page_size: usize,
    /// Every page to the end (the joiner's snapshot), or only the first.
    pub all_pages: bool,
    /// Answer at once with what this node knows, even while it warms up (then again once warm):
    /// a joiner sees its room without waiting, and members learned meanwhile reach it as joins.
    pub early: bool,
}

/// Settings of the driver, from `[node]` and `[presence]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceSettings {
    /// This node and run: its id and an incarnation that grows on every restart.
    pub node: NodeRef,
    /// How often each tenant's state ticks (heartbeat broadcast and expiry sweep).
    pub heartbeat_interval: Duration,
    /// A node silent this long is dropped with its members.
    pub node_expiry: Duration,
}

impl PresenceSettings {
    /// Settings for node `id`, with the current time as its incarnation.
    pub fn new(id: &str, heartbeat_interval: Duration, node_expiry: Duration) -> Self {
        Self {
            node: NodeRef {
                id: arqon_core::presence::NodeId(id.to_owned()),
                incarnation: now_us(),
            },
            heartbeat_interval,
            node_expiry,
        }
    }
}

/// Counters of the driver (`arqonbus.brain.presence_*`).
#[derive(Debug, Default)]
pub struct PresenceStats {
    /// Replication messages published.
    pub published: AtomicU64,
    /// Replication messages received (own echoes included).
    pub received: AtomicU64,
    /// Received messages that did not decode.
    pub undecodable: AtomicU64,
    /// Publishes the spine refused.
    pub publish_failures: AtomicU64,
    /// Notices handed to the delivery.
    pub notices: AtomicU64,
}

impl PresenceStats {
    /// Prometheus text lines for these counters.
    pub fn render(&self) -> String {
        let line = |name: &str, value: &AtomicU64| {
            format!(
                "arqonbus_brain_presence_{name} {}\n",
                value.load(Ordering::Relaxed)
            )
        };
        [
            line("published", &self.published),
            line("received", &self.received),
            line("undecodable", &self.undecodable),
            line("publish_failures", &self.publish_failures),
            line("notices", &self.notices),
        ]
        .concat()
    }
}

/// Now, in µs since the Unix epoch (the machine treats a clock step backwards as no step).
fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

enum Command {
    Join {
        tenant: TenantId,
        room: RoomName,
        session: SessionId,
        user: UserId,
        meta: Option<String>,
        /// The caller's span: the replication it causes continues its trace.
        span: tracing::Span,
    },
    Leave {
        tenant: TenantId,
        room: RoomName,
        session: SessionId,
        /// The caller's span.
        span: tracing::Span,
    },
    Received {
        tenant: TenantId,
        payload: Bytes,
        /// The spine headers: a sender's trace context, when it had one.
        headers: Headers,
    },
    List {
        tenant: TenantId,
        room: RoomName,
        query: ListQuery,
        reply: ListReply,
    },
}

/// The presence driver of one node. Cloning shares it; the task stops when the last clone is
/// dropped.
#[derive(Clone)]
pub struct PresenceDriver {
    commands: mpsc::UnboundedSender<Command>,
    stats: Arc<PresenceStats>,
    _task: Arc<TaskGuard>,
}

struct TaskGuard(JoinHandle<()>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for PresenceDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceDriver").finish_non_exhaustive()
    }
}

impl PresenceDriver {
    /// Starts the driver on the current tokio runtime.
    pub fn start(
        spine: Arc<dyn Spine>,
        settings: PresenceSettings,
        delivery: Arc<dyn PresenceDelivery>,
    ) -> Self {
        let (commands, inbox) = mpsc::unbounded_channel();
        let stats = Arc::new(PresenceStats::default());
        let actor = Actor {
            machine: Presence::new(PresenceConfig {
                node_ttl_us: micros(settings.node_expiry),
            }),
            warm_up: settings.heartbeat_interval + settings.heartbeat_interval / 2,
            settings,
            spine,
            delivery,
            stats: Arc::clone(&stats),
            commands: commands.clone(),
            tenants: HashMap::new(),
        };
        let task = tokio::spawn(actor.run(inbox));
        Self {
            commands,
            stats,
            _task: Arc::new(TaskGuard(task)),
        }
    }

    /// A local session joined `room` (`meta` is the join's metadata, opaque).
    pub fn join(
        &self,
        tenant: &TenantId,
        room: &RoomName,
        session: &str,
        user: &UserId,
        meta: Option<String>,
    ) {
        self.send(Command::Join {
            tenant: tenant.clone(),
            room: room.clone(),
            session: SessionId(session.to_owned()),
            user: user.clone(),
            meta,
            span: tracing::Span::current(),
        });
    }

    /// A local session left `room` (leave, close, expiry or drain).
    pub fn leave(&self, tenant: &TenantId, room: &RoomName, session: &str) {
        self.send(Command::Leave {
            tenant: tenant.clone(),
            room: room.clone(),
            session: SessionId(session.to_owned()),
            span: tracing::Span::current(),
        });
    }

    /// Reads `room`'s member list; `reply` runs in the driver's order, after every join and
    /// leave handed in before. A tenant this node only just started replicating is read once it
    /// has heard a round of heartbeats (one and a half heartbeat intervals).
    pub fn list(&self, tenant: &TenantId, room: &RoomName, query: ListQuery, reply: ListReply) {
        self.send(Command::List {
            tenant: tenant.clone(),
            room: room.clone(),
            query,
            reply,
        });
    }

    /// Every member of `room`, in order (for tests, tools and benchmarks).
    pub async fn members(&self, tenant: &TenantId, room: &RoomName) -> Vec<Member> {
        let (tx, rx) = oneshot::channel();
        let query = ListQuery {
            after: None,
            page_size: 1024,
            all_pages: true,
            early: false,
        };
        let mut tx = Some(tx);
        self.list(
            tenant,
            room,
            query,
            Box::new(move |pages| {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(pages);
                }
            }),
        );
        rx.await
            .map(|pages| pages.into_iter().flat_map(|page| page.members).collect())
            .unwrap_or_default()
    }

    /// The driver's counters.
    pub fn stats(&self) -> &PresenceStats {
        &self.stats
    }

    fn send(&self, command: Command) {
        if self.commands.send(command).is_err() {
            tracing::warn!("presence driver stopped; event dropped");
        }
    }
}

struct Tenant {
    state: PresenceState,
    subject: Subject,
    warm_at: Instant,
    forward: JoinHandle<()>,
}

impl Drop for Tenant {
    fn drop(&mut self) {
        self.forward.abort();
    }
}

struct Actor {
    machine: Presence,
    settings: PresenceSettings,
    warm_up: Duration,
    spine: Arc<dyn Spine>,
    delivery: Arc<dyn PresenceDelivery>,
    stats: Arc<PresenceStats>,
    commands: mpsc::UnboundedSender<Command>,
    tenants: HashMap<TenantId, Tenant>,
}

impl Actor {
    async fn run(mut self, mut inbox: mpsc::UnboundedReceiver<Command>) {
        let mut ticker = tokio::time::interval(self.settings.heartbeat_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    Some(command) => self.handle(command).await,
                    None => break,
                },
                _ = ticker.tick() => {
                    let tenants: Vec<TenantId> = self.tenants.keys().cloned().collect();
                    for tenant in tenants {
                        self.step(&tenant, PresenceEvent::Tick { now_us: now_us() }).await;
                    }
                }
            }
        }
    }

    async fn handle(&mut self, command: Command) {
        match command {
            Command::Join {
                tenant,
                room,
                session,
                user,
                meta,
                span,
            } => {
                if !self.replicate(&tenant).await {
                    return;
                }
                let event = PresenceEvent::Join {
                    room,
                    session,
                    user,
                    meta,
                    now_us: now_us(),
                };
                self.step(&tenant, event).instrument(span).await;
            }
            Command::Leave {
                tenant,
                room,
                session,
                span,
            } => {
                let event = PresenceEvent::Leave {
                    room,
                    session,
                    now_us: now_us(),
                };
                self.step(&tenant, event).instrument(span).await;
            }
            Command::Received {
                tenant,
                payload,
                headers,
            } => {
                self.stats.received.fetch_add(1, Ordering::Relaxed);
                match serde_json::from_slice::<Replication>(&payload) {
                    Ok(msg) => {
                        let event = PresenceEvent::Received {
                            msg,
                            now_us: now_us(),
                        };
                        // Only a message that carries a trace continues it: heartbeats and syncs
                        // from timers start none.
                        let span = tracing::info_span!(
                            "brain.presence.receive",
                            tenant = %tenant,
                            trace_id = tracing::field::Empty
                        );
                        if continue_from(&span, &headers) {
                            self.step(&tenant, event).instrument(span).await;
                        } else {
                            self.step(&tenant, event).await;
                        }
                    }
                    Err(error) => {
                        self.stats.undecodable.fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(%tenant, %error, "undecodable presence message");
                    }
                }
            }
            Command::List {
                tenant,
                room,
                query,
                reply,
            } => self.list(tenant, &room, &query, reply),
        }
    }

    fn list(&self, tenant: TenantId, room: &RoomName, query: &ListQuery, mut reply: ListReply) {
        let Some(entry) = self.tenants.get(&tenant) else {
            reply(vec![MemberPage {
                members: Vec::new(),
                next: None,
            }]);
            return;
        };
        if entry.warm_at > Instant::now() {
            if query.early {
                reply(pages_of(entry, room, query));
            }
            // Not yet heard a round of heartbeats: read again once the replicas had their chance.
            let commands = self.commands.clone();
            let warm_at = entry.warm_at;
            let room = room.clone();
            let query = ListQuery {
                early: false,
                ..query.clone()
            };
            tokio::spawn(async move {
                tokio::time::sleep_until(warm_at).await;
                let _ = commands.send(Command::List {
                    tenant,
                    room,
                    query,
                    reply,
                });
            });
            return;
        }
        reply(pages_of(entry, room, query));
    }

    /// Makes sure this node replicates `tenant`: its state exists and its presence subject is
    /// subscribed. False when the spine refused the subscription.
    async fn replicate(&mut self, tenant: &TenantId) -> bool {
        if self.tenants.contains_key(tenant) {
            return true;
        }
        let subject = Subject::presence(tenant);
        let subscribed = match self.spine.subscribe(&subject).await {
            Ok(subscription) => self.spine.flush().await.map(|()| subscription),
            Err(error) => Err(error),
        };
        let mut subscription = match subscribed {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::warn!(%tenant, %error, "presence subscription failed");
                return false;
            }
        };
        let commands = self.commands.clone();
        let owner = tenant.clone();
        let forward = tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                let command = Command::Received {
                    tenant: owner.clone(),
                    payload: message.payload,
                    headers: message.headers,
                };
                if commands.send(command).is_err() {
                    break;
                }
            }
        });
        self.tenants.insert(
            tenant.clone(),
            Tenant {
                state: PresenceState::new(tenant.clone(), self.settings.node.clone()),
                subject,
                warm_at: Instant::now() + self.warm_up,
                forward,
            },
        );
        true
    }

    async fn step(&mut self, tenant: &TenantId, event: PresenceEvent) {
        let Some(entry) = self.tenants.get_mut(tenant) else {
            return;
        };
        // `apply` is `Machine::step` in place: a join does not copy the tenant's presence.
        match self.machine.apply(&mut entry.state, &event) {
            Ok(effects) => {
                let subject = entry.subject.clone();
                for effect in effects {
                    self.execute(tenant, &subject, effect).await;
                }
            }
            // Our own messages come back on the subject; the machine names and refuses them.
            Err(PresenceRejection::FromSelf) => {}
            Err(rejection) => {
                tracing::debug!(%tenant, %rejection, "presence event refused");
            }
        }
    }

    async fn execute(&self, tenant: &TenantId, subject: &Subject, effect: PresenceEffect) {
        match effect {
            PresenceEffect::Broadcast(msg) | PresenceEffect::SendTo { msg, .. } => {
                self.publish(subject, &msg).await;
            }
            PresenceEffect::PresenceUpdate { room, member } => {
                self.stats.notices.fetch_add(1, Ordering::Relaxed);
                self.delivery
                    .deliver(tenant, &room, Notice::Joined, &member)
                    .await;
            }
            PresenceEffect::PresenceLeave { room, member } => {
                self.stats.notices.fetch_add(1, Ordering::Relaxed);
                self.delivery
                    .deliver(tenant, &room, Notice::Left, &member)
                    .await;
            }
        }
    }

    /// Publishes on the tenant's presence subject. A `SendTo` goes there too: every replica
    /// reads it and the machine refuses what is not addressed to it.
    async fn publish(&self, subject: &Subject, msg: &Replication) {
        let payload = match serde_json::to_vec(msg) {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) => {
                tracing::warn!(%error, "presence message did not encode");
                return;
            }
        };
        // A change caused by a traced request carries the trace on to the other replicas.
        let headers = with_current_trace(Headers::new());
        match self.spine.publish(subject, headers, payload).await {
            Ok(()) => {
                self.stats.published.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.publish_failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, "presence publish failed");
            }
        }
    }
}

/// The pages `query` reads of `room` in `entry`'s state.
fn pages_of(entry: &Tenant, room: &RoomName, query: &ListQuery) -> Vec<MemberPage> {
    let mut pages = Vec::new();
    let mut after = query.after.clone();
    loop {
        let page = entry.state.members(room, after.as_ref(), query.page_size);
        after.clone_from(&page.next);
        pages.push(page);
        if !query.all_pages || after.is_none() {
            break;
        }
    }
    pages
}

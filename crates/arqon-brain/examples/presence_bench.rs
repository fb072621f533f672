//! Presence benchmark (issue 5): join-to-event latency across two nodes over a real NATS server at a
//! paced join rate, and the memory of 100,000 members over 1,000 rooms.
//!
//! `cargo run --release -p arqon-brain --example presence_bench -- [joins] [rate_per_sec]`
//! Two `PresenceDriver`s (two nodes, two NATS connections) on one `nats-server`; node 1 joins
//! sessions at the given rate, node 2's delivery stamps each `PresenceUpdate`. Then a
//! `PresenceState` is filled with 100,000 members through `Presence::apply` and the process RSS
//! growth is read from `/proc/self/status`.
//!
//! `… --example presence_bench -- scale [members] [rate_per_sec]` (issue 16): three drivers, each on
//! its own server of a three-node NATS cluster, join `members` sessions into ONE room, spread round
//! robin over the nodes; it reports how long after the last join every node has heard of every
//! remote member (convergence), the same for leaving them all, and the bytes per replication
//! message, counted by a spine wrapper around each node's NATS connection.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arqon_brain::presence::{
    DeliveryFuture, Notice, PresenceDelivery, PresenceDriver, PresenceSettings,
};
use arqon_core::presence::{
    Member, NodeId, NodeRef, Presence, PresenceConfig, PresenceEvent, PresenceState, SessionId,
};
use arqon_proto::names::{RoomName, TenantId, UserId};
use arqon_spine::{
    Bytes, Headers, NatsConfig, NatsSpine, Spine, SpineError, SpineStatus, Subject, Subscription,
};
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};

/// Stamps every join notice with the time it reached node 2.
struct Stamp(mpsc::UnboundedSender<(String, Instant)>);

impl PresenceDelivery for Stamp {
    fn deliver<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a RoomName,
        notice: Notice,
        member: &'a Member,
    ) -> DeliveryFuture<'a> {
        if notice == Notice::Joined {
            let _ = self.0.send((member.session.0.clone(), Instant::now()));
        }
        Box::pin(async {})
    }
}

async fn spine(url: &str, name: &str) -> Arc<dyn Spine> {
    let mut config = NatsConfig::new([url.to_owned()]);
    config.name = Some(name.to_owned());
    Arc::new(NatsSpine::connect(&config).await.unwrap())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

async fn latency(joins: usize, rate: u64) {
    let server = arqon_testkit::NatsServer::start().await.unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    let settings =
        |id| PresenceSettings::new(id, Duration::from_millis(500), Duration::from_secs(5));
    let (tx1, _rx1) = mpsc::unbounded_channel();
    let (tx2, mut rx2) = mpsc::unbounded_channel();
    let node1 = PresenceDriver::start(
        spine(&server.url(), "n1").await,
        settings("n1"),
        Arc::new(Stamp(tx1)),
    );
    let node2 = PresenceDriver::start(
        spine(&server.url(), "n2").await,
        settings("n2"),
        Arc::new(Stamp(tx2)),
    );
    let user = UserId::parse("u").unwrap();
    let warm = RoomName::parse("warm").unwrap();
    // Both nodes replicate the tenant; node 2 has seen node 1 once it reports node 1's member.
    node2.join(&tenant, &warm, "w2", &user, None);
    node1.join(&tenant, &warm, "w1", &user, None);
    loop {
        let (session, _) = tokio::time::timeout(Duration::from_secs(10), rx2.recv())
            .await
            .expect("node 2 never heard node 1")
            .unwrap();
        if session == "w1" {
            break;
        }
    }
    let rooms: Vec<RoomName> = (0..100)
        .map(|i| RoomName::parse(&format!("room-{i}")).unwrap())
        .collect();
    let sent: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let start = Instant::now();
    let collect = {
        let sent = Arc::clone(&sent);
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(joins);
            while latencies.len() < joins {
                let Ok(Some((session, at))) =
                    tokio::time::timeout(Duration::from_secs(10), rx2.recv()).await
                else {
                    break;
                };
                if let Some(t0) = sent.lock().unwrap().remove(&session) {
                    latencies.push(at - t0);
                }
            }
            latencies
        })
    };
    for i in 0..joins {
        pace.tick().await;
        let session = format!("s{i}");
        sent.lock().unwrap().insert(session.clone(), Instant::now());
        node1.join(&tenant, &rooms[i % rooms.len()], &session, &user, None);
    }
    let elapsed = start.elapsed();
    let mut latencies = collect.await.unwrap();
    latencies.sort();
    #[allow(clippy::cast_precision_loss)]
    let achieved = joins as f64 / elapsed.as_secs_f64();
    println!(
        "latency: {} of {joins} joins at {achieved:.0}/s offered (target {rate}/s): p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "node 1 published {} messages, node 2 received {}",
        node1
            .stats()
            .published
            .load(std::sync::atomic::Ordering::Relaxed),
        node2
            .stats()
            .received
            .load(std::sync::atomic::Ordering::Relaxed)
    );
}

fn memory() {
    let machine = Presence::new(PresenceConfig::default());
    let tenant = TenantId::parse("bench").unwrap();
    let user = UserId::parse("user-0001").unwrap();
    let rooms: Vec<RoomName> = (0..1_000)
        .map(|i| RoomName::parse(&format!("room-{i:04}")).unwrap())
        .collect();
    let before = rss_kib();
    let mut state = PresenceState::new(
        tenant,
        NodeRef {
            id: NodeId("n1".to_owned()),
            incarnation: 1,
        },
    );
    let start = Instant::now();
    for i in 0..100_000_u64 {
        let event = PresenceEvent::Join {
            room: rooms[usize::try_from(i % 1_000).unwrap()].clone(),
            session: SessionId(format!("{i:016x}")),
            user: user.clone(),
            meta: None,
            now_us: 1_700_000_000_000_000 + i,
        };
        machine.apply(&mut state, &event).unwrap();
    }
    let elapsed = start.elapsed();
    let after = rss_kib();
    let members: usize = rooms.iter().map(|r| state.member_count(r)).sum();
    println!(
        "memory: {members} members in 1000 rooms: RSS +{} KiB ({} B/member); 100k joins applied in {elapsed:?} ({:?}/join)",
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / 100_000,
        elapsed / 100_000,
    );
}

/// A spine that counts what its node publishes: messages and payload bytes.
struct Counting {
    inner: Arc<dyn Spine>,
    messages: std::sync::atomic::AtomicU64,
    bytes: std::sync::atomic::AtomicU64,
}

impl Spine for Counting {
    fn publish<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), SpineError>> {
        use std::sync::atomic::Ordering::Relaxed;
        self.messages.fetch_add(1, Relaxed);
        self.bytes.fetch_add(payload.len() as u64, Relaxed);
        self.inner.publish(subject, headers, payload)
    }

    fn subscribe<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Subscription, SpineError>> {
        self.inner.subscribe(subject)
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SpineError>> {
        self.inner.flush()
    }

    fn status(&self) -> SpineStatus {
        self.inner.status()
    }

    fn watch_status(&self) -> watch::Receiver<SpineStatus> {
        self.inner.watch_status()
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped()
    }
}

/// Counts the join and leave notices one node delivers for members of other nodes.
struct Tally {
    node: String,
    events: mpsc::UnboundedSender<(String, Notice)>,
}

impl PresenceDelivery for Tally {
    fn deliver<'a>(
        &'a self,
        _: &'a TenantId,
        _: &'a RoomName,
        notice: Notice,
        member: &'a Member,
    ) -> DeliveryFuture<'a> {
        if member.node.0 != self.node {
            let _ = self.events.send((self.node.clone(), notice));
        }
        Box::pin(async {})
    }
}

/// Waits until every node has delivered `per_node` notices of kind `wanted` about remote members;
/// returns the time from `since` to the last one.
async fn converged(
    events: &mut mpsc::UnboundedReceiver<(String, Notice)>,
    nodes: &[String],
    wanted: &Notice,
    per_node: usize,
    since: Instant,
) -> Duration {
    let mut seen: HashMap<String, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
    while seen.values().any(|n| *n < per_node) {
        let (node, notice) = tokio::time::timeout(Duration::from_mins(1), events.recv())
            .await
            .expect("presence did not converge within 60 s")
            .expect("deliveries open");
        if &notice == wanted {
            *seen.get_mut(&node).unwrap() += 1;
        }
    }
    since.elapsed()
}

async fn scale(members: usize, rate: u64) {
    use std::sync::atomic::Ordering::Relaxed;
    let cluster = arqon_testkit::NatsCluster::start(3).await.unwrap();
    cluster.wait_meshed().await.unwrap();
    let tenant = TenantId::parse("bench").unwrap();
    let room = RoomName::parse("big").unwrap();
    let (tx, mut events) = mpsc::unbounded_channel();
    let names: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let mut drivers = Vec::new();
    let mut spines = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let counting = Arc::new(Counting {
            inner: spine(&cluster.urls()[i], name).await,
            messages: 0.into(),
            bytes: 0.into(),
        });
        spines.push(Arc::clone(&counting));
        drivers.push(PresenceDriver::start(
            counting,
            PresenceSettings::new(name, Duration::from_millis(500), Duration::from_secs(10)),
            Arc::new(Tally {
                node: name.clone(),
                events: tx.clone(),
            }),
        ));
    }
    // Warm up: each node joins one member and every node hears the two others.
    let user = UserId::parse("u").unwrap();
    let warm = RoomName::parse("warm").unwrap();
    for (i, driver) in drivers.iter().enumerate() {
        driver.join(&tenant, &warm, &format!("w{i}"), &user, None);
    }
    converged(&mut events, &names, &Notice::Joined, 2, Instant::now()).await;
    let (messages_before, bytes_before): (u64, u64) = spines
        .iter()
        .map(|s| (s.messages.load(Relaxed), s.bytes.load(Relaxed)))
        .fold((0, 0), |(m, b), (m2, b2)| (m + m2, b + b2));

    let mut pace = tokio::time::interval(Duration::from_micros(1_000_000 / rate));
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    for i in 0..members {
        pace.tick().await;
        drivers[i % 3].join(&tenant, &room, &format!("s{i}"), &user, None);
    }
    let joined = Instant::now();
    // Each node hears of the members of the two other nodes.
    let remote = members - members.div_ceil(3);
    let join_convergence = converged(&mut events, &names, &Notice::Joined, remote, joined).await;
    let join_total = started.elapsed();
    let (messages_joined, bytes_joined): (u64, u64) = spines
        .iter()
        .map(|s| (s.messages.load(Relaxed), s.bytes.load(Relaxed)))
        .fold((0, 0), |(m, b), (m2, b2)| (m + m2, b + b2));
    let mut members_seen = Vec::new();
    for driver in &drivers {
        members_seen.push(driver.members(&tenant, &room).await.len());
    }

    let leaving = Instant::now();
    for i in 0..members {
        pace.tick().await;
        drivers[i % 3].leave(&tenant, &room, &format!("s{i}"));
    }
    let left = Instant::now();
    let leave_convergence = converged(&mut events, &names, &Notice::Left, remote, left).await;
    let leave_total = leaving.elapsed();
    let messages = messages_joined - messages_before;
    let bytes = bytes_joined - bytes_before;
    println!(
        "scale: {members} members in one room over 3 nodes (3-node NATS cluster), joins offered at {rate}/s"
    );
    println!(
        "joins: last join to every node converged {join_convergence:?} (first join to converged {join_total:?}); members seen per node {members_seen:?}"
    );
    println!(
        "leaves: last leave to every node converged {leave_convergence:?} (first leave to converged {leave_total:?})"
    );
    println!(
        "replication while joining: {messages} messages, {bytes} payload bytes, {} B per message, {} B per member",
        bytes / messages.max(1),
        bytes / members as u64
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("scale") {
        args.next();
        let members = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
        let rate = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
        scale(members, rate).await;
        return;
    }
    let joins = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let rate = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    memory();
    latency(joins, rate).await;
}

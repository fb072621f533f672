//! Presence benchmark (issue 5): join-to-event latency across two nodes over a real NATS server at a
//! paced join rate, and the memory of 100,000 members over 1,000 rooms.
//!
//! `cargo run --release -p arqon-brain --example presence_bench -- [joins] [rate_per_sec]`
//! Two `PresenceDriver`s (two nodes, two NATS connections) on one `nats-server`; node 1 joins
//! sessions at the given rate, node 2's delivery stamps each `PresenceUpdate`. Then a
//! `PresenceState` is filled with 100,000 members through `Presence::apply` and the process RSS
//! growth is read from `/proc/self/status`.

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
use arqon_spine::{NatsConfig, NatsSpine, Spine};
use tokio::sync::mpsc;

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

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let joins = args.next().and_then(|a| a.parse().ok()).unwrap_or(5_000);
    let rate = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);
    memory();
    latency(joins, rate).await;
}

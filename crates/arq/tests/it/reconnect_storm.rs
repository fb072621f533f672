//! 10,000 clients survive the crash of their node: all reconnect to it at once when it restarts
//! (AC-SHIELD-21). The node is a real `arq serve` process; the clients are `arqon-client`s in this
//! process, so each side has its own file-descriptor budget.

use std::path::Path;
use std::time::{Duration, Instant};

use arqon_auth::Role;
use arqon_client::{Backoff, BusClient, ClientError, Event};
use arqon_testkit::JwtIssuer;
use tokio::task::JoinSet;

use crate::cli_serve::{Served, serve, write_node_config};
use crate::dev_stack::{get, sample};

const CLIENTS: usize = 10_000;
/// Clients spread over this many users (the per-user cap is per node).
const USERS: usize = 100;
/// Clients that join the room and must get a publish after the storm.
const MEMBERS: usize = 50;
const ROOM: &str = "storm";
/// Upgrades the node admits per second, with this burst: far below the storm, so most of the
/// 10,000 are turned away with 503 + Retry-After at first and must come back.
const ACCEPT_PER_SEC: u32 = 1_000;
const ACCEPT_BURST: u32 = 200;
/// Bound on every wait; the storm itself settles in seconds.
const WAIT: Duration = Duration::from_mins(4);

fn write_config(dir: &Path, port: u16, jwks: &Path) -> std::path::PathBuf {
    let sections = format!(
        r#"[node]
id = "storm"
listen = "127.0.0.1:{port}"
dev = true

[limits]
max_connections = 12000
accept = {{ per_sec = {ACCEPT_PER_SEC}, burst = {ACCEPT_BURST} }}

[limits.tenant_defaults]
max_connections = 12000
max_connections_per_user = 200

[session]
heartbeat_interval = "30s"
idle_timeout = "300s"
"#
    );
    write_node_config(dir, "storm-node", &sections, jwks)
}

/// The node's `/metrics` page.
fn metrics(addr: &str) -> String {
    let (status, body) = get(&format!("http://{addr}/metrics"));
    assert_eq!(status, 200);
    body
}

/// A sample of the page; counters and gauges of the Shield are whole numbers, and a labelled
/// counter is absent until it first counts.
fn metric(page: &str, series: &str) -> u64 {
    sample(page, series).unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Connects one client, coming back after each 503's Retry-After (the first connection is the
/// caller's to retry; reconnects are the client's own).
async fn connect(url: String, token: String) -> BusClient {
    let backoff = Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_secs(5),
    };
    loop {
        match BusClient::connect_with(&url, &token, backoff).await {
            Ok(client) => return client,
            Err(ClientError::Refused {
                status: 503,
                retry_after,
            }) => tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await,
            Err(error) => panic!("connect: {error}"),
        }
    }
}

/// The next event of `client` that `wanted` accepts, skipping others; panics after [`WAIT`].
async fn next_matching(client: &mut BusClient, wanted: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = client.next_event().await.expect("client alive");
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event within the wait")
}

fn is_connected(event: &Event) -> bool {
    matches!(event, Event::Connected { .. })
}

fn is_room_snapshot(event: &Event) -> bool {
    matches!(event, Event::PresenceJoin { room, .. } if room == ROOM)
}

fn is_message(payload: &'static [u8]) -> impl Fn(&Event) -> bool {
    move |event| matches!(event, Event::Message { payload: got, .. } if got.as_ref() == payload)
}

/// Every member gets `payload` published by member 0.
async fn publish_reaches_every_member(clients: &mut [BusClient], payload: &'static [u8]) {
    clients[0]
        .publish(ROOM, payload, "text/plain")
        .await
        .expect("publish");
    for member in &mut clients[..MEMBERS] {
        next_matching(member, is_message(payload)).await;
    }
}

/// Waits until every client is connected again; returns them in their order and the sorted
/// milliseconds from `crashed` to each reconnect. Each client is watched by its own task, so a
/// reconnect is timed when it happens.
async fn all_reconnected(clients: Vec<BusClient>, crashed: Instant) -> (Vec<BusClient>, Vec<u128>) {
    let mut watching = JoinSet::new();
    for (i, mut client) in clients.into_iter().enumerate() {
        watching.spawn(async move {
            next_matching(&mut client, is_connected).await;
            (i, client, crashed.elapsed().as_millis())
        });
    }
    let mut back: Vec<(usize, BusClient, u128)> = Vec::with_capacity(CLIENTS);
    while let Some(reconnected) = watching.join_next().await {
        back.push(reconnected.expect("watch task"));
    }
    back.sort_unstable_by_key(|(i, _, _)| *i);
    let mut waits: Vec<u128> = back.iter().map(|(_, _, ms)| *ms).collect();
    waits.sort_unstable();
    (
        back.into_iter().map(|(_, client, _)| client).collect(),
        waits,
    )
}

/// Milliseconds at the given quantile of `sorted`.
fn quantile(sorted: &[u128], q: f64) -> u128 {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let index = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index]
}

// AC-SHIELD-21
#[test]
fn ac_shield_21_ten_thousand_clients_reconnect_at_once_after_a_node_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = JwtIssuer::new().expect("issuer");
    let port = arqon_testkit::free_port().expect("port");
    let config = write_config(dir.path(), port, &issuer.jwks_path());
    let config_arg = config.to_str().expect("utf-8 path");
    let tokens: Vec<String> = (0..USERS)
        .map(|user| {
            issuer
                .token(
                    "storm",
                    &format!("user{user}"),
                    Role::User,
                    Duration::from_hours(1),
                )
                .expect("token")
        })
        .collect();
    let Served {
        mut guard, addr, ..
    } = serve(&["--config", config_arg], dir.path());
    let url = format!("ws://{addr}/v1/socket");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        // 10,000 sessions, opened in waves.
        let mut clients = Vec::with_capacity(CLIENTS);
        for wave in 0..CLIENTS / 1_000 {
            let mut opening = JoinSet::new();
            for i in wave * 1_000..(wave + 1) * 1_000 {
                opening.spawn(connect(url.clone(), tokens[i % USERS].clone()));
            }
            while let Some(client) = opening.join_next().await {
                clients.push(client.expect("connect task"));
            }
        }
        for client in &mut clients {
            next_matching(client, is_connected).await;
        }
        for member in &mut clients[..MEMBERS] {
            member.join(ROOM).await.expect("join");
            next_matching(member, is_room_snapshot).await;
        }
        publish_reaches_every_member(&mut clients, b"before the crash").await;
        let before = metrics(&addr);
        assert_eq!(metric(&before, "arqonbus_shield_connections_open"), 10_000);

        // The crash: every socket drops at once. The node comes back on the same address and all
        // 10,000 clients reconnect to it together.
        let mut child = guard.0.take().expect("child");
        child.kill().expect("kill -9");
        child.wait().expect("reaped");
        let crashed = Instant::now();
        let Served {
            guard: restarted,
            addr: again,
            ..
        } = serve(&["--config", config_arg], dir.path());
        guard = restarted;
        assert_eq!(again, addr);

        let (mut clients, waits) = all_reconnected(clients, crashed).await;
        println!(
            "all {CLIENTS} reconnected: p50 {} ms, p99 {} ms, last {} ms after the crash",
            quantile(&waits, 0.5),
            quantile(&waits, 0.99),
            quantile(&waits, 1.0)
        );
        // Rooms are joined again by the clients themselves, and the bus works end to end.
        for member in &mut clients[..MEMBERS] {
            next_matching(member, is_room_snapshot).await;
        }
        publish_reaches_every_member(&mut clients, b"after the storm").await;

        let (health, _) = get(&format!("http://{addr}/healthz"));
        assert_eq!(health, 200);
        let after = metrics(&addr);
        assert_eq!(metric(&after, "arqonbus_shield_connections_open"), 10_000);
        // The storm was shaped by admission control: turned-away upgrades got 503 and came back.
        let shaped = metric(
            &after,
            "arqonbus_shield_admission_rejections{reason=\"accept_rate\"}",
        );
        assert!(shaped > 0, "no upgrade was turned away:\n{after}");
        let pid = guard.0.as_ref().expect("node").id();
        let rss = rss_kib(pid);
        println!(
            "node RSS with {CLIENTS} sessions after the storm: {rss} KiB; {shaped} upgrades got 503"
        );
        // SC-003: a node holds 10,000 sessions in well under 1 GB.
        assert!(rss < 1024 * 1024, "RSS {rss} KiB");
    });
    drop(guard);
}

//! The deploy simulation (ACES stage 12, specs/deploy.md): three real `arq serve` processes on one
//! real nats-server behind a round-robin load balancer, restarted one after another with SIGTERM
//! while clients stay subscribed. Each drained node tells its clients to move (`Drain`), they
//! reconnect through the balancer to a node that is up and join their rooms again, the node exits
//! cleanly, and the node is started again ("rollback": the previous version back in service).
//! Every publish made between restarts reaches every subscriber exactly once, and no client sees an
//! error. A steady publisher on a fourth node publishes all along: with history (on by default) and
//! the client's recovery, every subscriber gets every one of its messages exactly once, in order,
//! across the three restarts. An observer on that fourth node watches the room's presence: every
//! move is one leave of the user's old session, never a second one, and at the end every user is
//! present once. The figures go to stdout as one `DEPLOY_SIM {json}` line that
//! `ci/deploy_sim.sh` reads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arqon_auth::Role;
use arqon_client::{Backoff, BusClient, Event};
use arqon_testkit::{Balancer, JwtIssuer, NatsServer};
use tokio::task::JoinSet;

use crate::cli_serve::{Served, serve, terminate, write_node_config};

const NODES: usize = 3;
/// Clients, all in one room; client 0 publishes each round.
const CLIENTS: usize = 31;
const ROOM: &str = "deploy";
const TENANT: &str = "deploy";
/// Bound on every wait; a restart settles in a few seconds.
const WAIT: Duration = Duration::from_mins(1);
/// The rollback budget of specs/aces.md (stage 12): a node back in service in under 10 s.
const ROLLBACK_BUDGET: Duration = Duration::from_secs(10);

fn write_config(dir: &Path, index: usize, port: u16, nats_url: &str, jwks: &Path) -> PathBuf {
    let sections = format!(
        r#"[node]
id = "deploy-{index}"
listen = "127.0.0.1:{port}"
dev = true
drain_timeout = "5s"

[spine]
kind = "nats"
nats_urls = ["{nats_url}"]
"#
    );
    write_node_config(dir, &format!("node-{index}"), &sections, jwks)
}

/// The status of `GET /readyz` on `addr`, or `None` while nothing answers.
fn readyz(addr: &str) -> Option<u16> {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(WAIT)).ok()?;
    write!(
        stream,
        "GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the node at `addr` answers `/readyz` with 200 (spine connected, not draining),
/// polling it as a load balancer's health check does; panics after [`WAIT`].
async fn ready(addr: &str) {
    let addr = addr.to_owned();
    tokio::time::timeout(WAIT, async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        loop {
            tick.tick().await;
            let probe = addr.clone();
            let status = tokio::task::spawn_blocking(move || readyz(&probe)).await;
            if matches!(status, Ok(Some(200))) {
                return;
            }
        }
    })
    .await
    .expect("node ready within the wait");
}

/// Prefix of the steady publisher's messages.
const STEADY: &str = "steady-";
/// The steady publisher's pace: one message per this.
const STEADY_EVERY: Duration = Duration::from_millis(20);

/// A subscriber, and the steady messages it has received so far, in order.
struct Sub {
    client: BusClient,
    steady: Vec<String>,
}

/// The next event of `sub` that `wanted` accepts, recording the steady messages on the way; an
/// `Error` event fails the test (clients may see only the drain); panics after [`WAIT`].
async fn next_matching(sub: &mut Sub, wanted: impl Fn(&Event) -> bool) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = sub.client.next_event().await.expect("client alive");
            assert!(
                !matches!(event, Event::Error { .. }),
                "a client saw an error: {event:?}"
            );
            if let Event::Message { payload, .. } = &event {
                let text = String::from_utf8_lossy(payload);
                if text.starts_with(STEADY) {
                    sub.steady.push(text.into_owned());
                    continue;
                }
            }
            if wanted(&event) {
                return event;
            }
        }
    })
    .await
    .expect("event within the wait")
}

/// Publishes numbered steady messages from `client` until `stop`; returns how many (each acked).
async fn steady(client: BusClient, mut stop: tokio::sync::watch::Receiver<bool>) -> usize {
    let mut tick = tokio::time::interval(STEADY_EVERY);
    // Never a burst after a slow publish: the tenant's publish rate is the default one.
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut sent = 0;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.wait_for(|stop| *stop) => return sent,
        }
        client
            .publish(
                ROOM,
                format!("{STEADY}{sent:05}").into_bytes(),
                "text/plain",
            )
            .await
            .expect("a steady publish is acknowledged");
        sent += 1;
    }
}

fn is_room_snapshot(event: &Event) -> bool {
    matches!(event, Event::PresenceJoin { room, .. } if room == ROOM)
}

/// Publishes `payload` from client 0 and waits until every client has it, exactly once: a client
/// that sees an earlier round's payload again fails the test.
async fn every_client_gets(clients: Vec<Sub>, round: usize) -> Vec<Sub> {
    let payload = format!("round {round}");
    clients[0]
        .client
        .publish(ROOM, payload.clone().into_bytes(), "text/plain")
        .await
        .expect("publish");
    each(clients, move |i, mut client| {
        let payload = payload.clone();
        async move {
            next_matching(&mut client, |event| match event {
                Event::Message { payload: got, .. } => {
                    let got = String::from_utf8_lossy(got);
                    assert!(
                        got == payload || !got.starts_with("round "),
                        "client {i} got {got:?} again while waiting for {payload:?}"
                    );
                    got == payload
                }
                _ => false,
            })
            .await;
            client
        }
    })
    .await
}

/// Runs `task` for every client at once and returns the clients in their order.
async fn each<F, Fut>(clients: Vec<Sub>, task: F) -> Vec<Sub>
where
    F: Fn(usize, Sub) -> Fut,
    Fut: std::future::Future<Output = Sub> + Send + 'static,
{
    let mut running = JoinSet::new();
    for (i, client) in clients.into_iter().enumerate() {
        let done = task(i, client);
        running.spawn(async move { (i, done.await) });
    }
    let mut back = Vec::new();
    while let Some(done) = running.join_next().await {
        back.push(done.expect("client task"));
    }
    back.sort_unstable_by_key(|(i, _)| *i);
    back.into_iter().map(|(_, client)| client).collect()
}

/// Watches every client through one node's drain: a client that disconnects must connect again
/// (through the balancer, to a node that is up) and get its room back, and reports on `moved`;
/// a client still connected when `stay` fires was on another node.
async fn watch_moves(
    clients: Vec<Sub>,
    moved: tokio::sync::mpsc::UnboundedSender<usize>,
    stay: tokio::sync::watch::Receiver<bool>,
) -> Vec<Sub> {
    each(clients, move |i, mut client| {
        let moved = moved.clone();
        let mut stay = stay.clone();
        async move {
            tokio::select! {
                _ = next_matching(&mut client, |e| matches!(e, Event::Disconnected)) => {}
                _ = stay.wait_for(|stay| *stay) => return client,
            }
            next_matching(&mut client, |e| matches!(e, Event::Connected { .. })).await;
            next_matching(&mut client, is_room_snapshot).await;
            let _ = moved.send(i);
            client
        }
    })
    .await
}

// AC-DEPLOY-1, AC-DEPLOY-2, AC-DEPLOY-3, AC-DEPLOY-5, AC-DEPLOY-6
#[test]
fn deploy_simulation_rolling_restart_of_three_nodes_loses_no_subscriber() {
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = JwtIssuer::new().expect("issuer");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let nats = NatsServer::start_jetstream().await.expect("nats-server");
        let configs: Vec<PathBuf> = (0..=NODES)
            .map(|i| {
                let port = arqon_testkit::free_port().expect("port");
                write_config(dir.path(), i, port, &nats.url(), &issuer.jwks_path())
            })
            .collect();
        let start = |i: usize| -> Served {
            let config = configs[i].to_str().expect("utf-8 path");
            tokio::task::block_in_place(|| serve(&["--config", config], dir.path()))
        };
        let mut nodes: Vec<Served> = (0..NODES).map(start).collect();
        // The steady publisher's node is not restarted.
        let publisher_node = start(NODES);
        for node in nodes.iter().chain([&publisher_node]) {
            ready(&node.addr).await;
        }
        let backends: Vec<SocketAddr> = nodes
            .iter()
            .map(|n| n.addr.parse().expect("node address"))
            .collect();
        let balancer = Balancer::start(backends).await.expect("balancer");
        // The observer is in the room before the clients, so it is shown every one of them.
        let (moves_tx, moves_rx) = tokio::sync::watch::channel(None);
        let (everyone_tx, everyone_rx) = tokio::sync::oneshot::channel();
        let observer = tokio::spawn(observe(
            in_room(&publisher_node.addr, &issuer, "observer").await,
            moves_rx,
            everyone_tx,
        ));
        let mut clients = connect_all(&balancer, &issuer).await;
        assert!(
            balancer.open().iter().all(|n| *n >= CLIENTS / NODES),
            "the balancer spreads the clients: {:?}",
            balancer.open()
        );
        clients = every_client_gets(clients, 0).await;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let publisher = in_room(&publisher_node.addr, &issuer, "steady").await;
        let steady_task = tokio::spawn(steady(publisher, stop_rx));
        tokio::time::timeout(WAIT, everyone_rx)
            .await
            .expect("the observer is shown every client")
            .expect("observer alive");

        let mut figures = Figures::default();
        for (i, node) in nodes.iter_mut().enumerate() {
            let on_node = balancer.open()[i];
            let (moved_tx, mut moved_rx) = tokio::sync::mpsc::unbounded_channel();
            let (stay_tx, stay_rx) = tokio::sync::watch::channel(false);
            let watching = tokio::spawn(watch_moves(clients, moved_tx, stay_rx));
            let terminated = Instant::now();
            let status = tokio::task::block_in_place(|| terminate(&mut node.guard));
            let drain = terminated.elapsed();
            assert!(
                status.success(),
                "node {i} exits cleanly after SIGTERM: {status}"
            );
            // Every client that was on node i is back, on another node, with its room.
            tokio::time::timeout(WAIT, async {
                for _ in 0..on_node {
                    moved_rx.recv().await.expect("a watcher reports");
                }
            })
            .await
            .expect("every client of the drained node moved");
            let moved = figures.moved(drain, on_node, terminated.elapsed());
            let _ = stay_tx.send(true);
            clients = watching.await.expect("watchers");
            assert_eq!(balancer.open()[i], 0, "nothing is left on node {i}");

            // Rollback: the previous version of node i is started again and serves.
            let restarted = Instant::now();
            *node = start(i);
            ready(&node.addr).await;
            figures.rollback(restarted.elapsed());
            clients = every_client_gets(clients, i + 1).await;
            println!("restart {i}: {moved}");
        }
        let _ = stop_tx.send(true);
        let sent = steady_task.await.expect("steady publisher");
        let clients = every_steady_message(clients, sent).await;
        figures.steady = (sent, clients.len());
        let _ = moves_tx.send(Some(figures.moved.iter().sum()));
        figures.presence = observer
            .await
            .expect("observer")
            .check(figures.moved.iter().sum());
        drop(balancer);
        println!("DEPLOY_SIM {}", figures.json());
    });
}

/// Connects every client through the balancer; each joins the room (client 0 also publishes).
async fn connect_all(balancer: &Balancer, issuer: &JwtIssuer) -> Vec<Sub> {
    let url = format!("ws://{}/v1/socket", balancer.addr());
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(1),
    };
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let token = issuer
            .token(
                TENANT,
                &format!("user{i}"),
                Role::User,
                Duration::from_hours(1),
            )
            .expect("token");
        let client = BusClient::connect_with(&url, &token, backoff)
            .await
            .expect("connect");
        client.join(ROOM).await.expect("join");
        let mut sub = Sub {
            client,
            steady: Vec::new(),
        };
        next_matching(&mut sub, is_room_snapshot).await;
        clients.push(sub);
    }
    clients
}

/// Waits until every subscriber has every steady message, and checks it got each once, in order.
async fn every_steady_message(clients: Vec<Sub>, sent: usize) -> Vec<Sub> {
    let expected: Vec<String> = (0..sent).map(|i| format!("{STEADY}{i:05}")).collect();
    each(clients, move |i, mut sub| {
        let expected = expected.clone();
        async move {
            let deadline = tokio::time::Instant::now() + WAIT;
            while sub.steady.len() < expected.len() {
                let Ok(event) = tokio::time::timeout_at(deadline, sub.client.next_event()).await
                else {
                    break;
                };
                if let Ok(Event::Message { payload, .. }) = event {
                    let text = String::from_utf8_lossy(&payload).into_owned();
                    if text.starts_with(STEADY) {
                        sub.steady.push(text);
                    }
                }
            }
            assert_eq!(
                sub.steady, expected,
                "client {i}: every steady message once, in order, across the restarts"
            );
            sub
        }
    })
    .await
}

/// A client of `user` straight to the node at `addr` (the one never restarted), in the room: the
/// steady publisher, and the observer watching the room's presence.
async fn in_room(addr: &str, issuer: &JwtIssuer, user: &str) -> BusClient {
    let token = issuer
        .token(TENANT, user, Role::User, Duration::from_hours(1))
        .expect("token");
    let client = BusClient::connect(&format!("ws://{addr}/v1/socket"), &token)
        .await
        .unwrap_or_else(|e| panic!("connect {user}: {e}"));
    client.join(ROOM).await.expect("join");
    client
}

/// The presence the observer saw, per user: joins (the join's snapshot included) minus leaves,
/// the lowest that ever was, and the leaves.
#[derive(Debug, Default)]
struct Seen {
    present: std::collections::BTreeMap<String, i64>,
    lowest: i64,
    leaves: usize,
    log: Vec<String>,
}

impl Seen {
    fn settled(&self, moves: usize) -> bool {
        self.leaves >= moves
            && self
                .present
                .iter()
                .all(|(user, n)| *n == 1 || !user.starts_with("user"))
    }

    /// Every move was one leave, no user was ever left twice, and each is present once now.
    fn check(self, moves: usize) -> (usize, i64) {
        assert!(self.lowest >= 0, "a user was left twice: {self:?}");
        assert_eq!(self.leaves, moves, "one leave per move: {self:?}");
        let users: Vec<&String> = self
            .present
            .keys()
            .filter(|u| u.starts_with("user"))
            .collect();
        assert_eq!(users.len(), CLIENTS, "{self:?}");
        assert!(users.iter().all(|u| self.present[*u] == 1), "{self:?}");
        (self.leaves, self.lowest)
    }
}

/// Records the room's presence until the moves are known and have all been seen (bounded).
async fn observe(
    mut client: BusClient,
    mut moves: tokio::sync::watch::Receiver<Option<usize>>,
    everyone: tokio::sync::oneshot::Sender<()>,
) -> Seen {
    let mut seen = Seen::default();
    let mut everyone = Some(everyone);
    let _ = tokio::time::timeout(WAIT * 3, async {
        loop {
            tokio::select! {
                event = client.next_event() => match event {
                    Ok(Event::PresenceJoin { room, users, snapshot }) if room == ROOM => {
                        seen.log.push(format!("{}{users:?}", if snapshot { "=" } else { "+" }));
                        if snapshot {
                            // The room's list replaces what was known (it fits one page here).
                            seen.present.clear();
                        }
                        for user in users {
                            *seen.present.entry(user).or_default() += 1;
                        }
                    }
                    Ok(Event::PresenceLeave { room, user }) if room == ROOM => {
                        seen.log.push(format!("-{user}"));
                        // The steady publisher leaves once, at the end; the moves are the users'.
                        seen.leaves += usize::from(user.starts_with("user"));
                        let present = seen.present.entry(user).or_default();
                        *present -= 1;
                        seen.lowest = seen.lowest.min(*present);
                    }
                    Ok(other) => seen.log.push(format!("{other:?}")),
                    Err(_) => return,
                },
                changed = moves.changed() => if changed.is_err() { return },
            }
            let users = seen
                .present
                .iter()
                .filter(|(u, n)| u.starts_with("user") && **n == 1);
            if users.count() == CLIENTS
                && let Some(everyone) = everyone.take()
            {
                let _ = everyone.send(());
            }
            if moves.borrow().is_some_and(|moves| seen.settled(moves)) {
                return;
            }
        }
    })
    .await;
    seen
}

/// What the simulation measured, per restart.
#[derive(Default)]
struct Figures {
    /// Steady messages published during the restarts, and the subscribers that got them all.
    steady: (usize, usize),
    /// Leaves the observer saw, and the lowest presence count of a user (0: never left twice).
    presence: (usize, i64),
    drain_ms: Vec<u128>,
    moved_ms: Vec<u128>,
    moved: Vec<usize>,
    rollback_ms: Vec<u128>,
}

impl Figures {
    /// Records a drain; returns it as a line for the log.
    fn moved(&mut self, drain: Duration, clients: usize, all_back: Duration) -> String {
        self.drain_ms.push(drain.as_millis());
        self.moved.push(clients);
        self.moved_ms.push(all_back.as_millis());
        format!(
            "drained in {} ms, its {clients} clients back on other nodes {} ms after SIGTERM",
            drain.as_millis(),
            all_back.as_millis()
        )
    }

    fn rollback(&mut self, took: Duration) {
        assert!(
            took < ROLLBACK_BUDGET,
            "a node back in {took:?}, over {ROLLBACK_BUDGET:?}"
        );
        self.rollback_ms.push(took.as_millis());
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "nodes": NODES,
            "clients": CLIENTS,
            "rounds": NODES + 1,
            "moved_per_restart": self.moved,
            "drain_ms": self.drain_ms,
            "moved_ms": self.moved_ms,
            "rollback_ms_each": self.rollback_ms,
            "rollback_ms": self.rollback_ms.iter().max(),
            "steady_published": self.steady.0,
            "steady_complete_subscribers": self.steady.1,
            "presence_leaves_seen": self.presence.0,
            "presence_lowest_count": self.presence.1,
        })
    }
}

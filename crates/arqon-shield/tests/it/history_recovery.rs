//! History and recovery end to end (`specs/history.md`): real nodes, real sockets, the Rust client,
//! the embedded spine and real `nats-server` processes (one node, and a three-node `JetStream`
//! cluster with nodes drained and NATS nodes killed).

use std::time::Duration;

use arqon_client::{BusClient, Event};
use arqon_config::{Config, SpineKind, TenantHistoryOverride};
use arqon_proto::v1::{self, envelope::Body};
use arqon_shield::Node;
use arqon_testkit::{Balancer, DelayProxy, NatsCluster};

use crate::support::{self, Bus, connect, token};

/// Longest wait for one expected client event (1,000 recovered messages included).
const WAIT: Duration = Duration::from_secs(30);

/// The next event `pick` accepts, skipping the others (presence, connection notices).
async fn next<T>(client: &mut BusClient, mut pick: impl FnMut(Event) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            let event = client.next_event().await.unwrap();
            if let Some(found) = pick(event) {
                return found;
            }
        }
    })
    .await
    .expect("no matching event in time")
}

/// The next `n` messages of `room`, as text, in arrival order; fails on anything not a message of
/// the room once the first message arrived (a duplicate shows up as a count or order mismatch).
async fn messages(client: &mut BusClient, room: &str, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        let text = next(client, |event| match event {
            Event::Message {
                room: r, payload, ..
            } if r == room => Some(String::from_utf8(payload.to_vec()).unwrap()),
            _ => None,
        })
        .await;
        got.push(text);
    }
    got
}

/// The recovery outcome of the next join answer: (recovered, truncated, count).
async fn recovered(client: &mut BusClient) -> (bool, bool, u32) {
    next(client, |event| match event {
        Event::Recovered {
            recovered,
            truncated,
            count,
            ..
        } => Some((recovered, truncated, count)),
        _ => None,
    })
    .await
}

async fn disconnected(client: &mut BusClient) {
    next(client, |event| {
        matches!(event, Event::Disconnected).then_some(())
    })
    .await;
}

async fn publish_all(client: &BusClient, room: &str, tag: &str, n: usize) {
    for i in 0..n {
        client
            .publish(room, format!("{tag}-{i:04}").into_bytes(), "text/plain")
            .await
            .unwrap();
    }
}

fn expected(tag: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{tag}-{i:04}")).collect()
}

/// Bob, the subscriber, connected through `addr` (a proxy or a balancer in front of nodes).
async fn subscriber(addr: std::net::SocketAddr) -> BusClient {
    let url = format!("ws://{addr}/v1/socket");
    BusClient::connect(&url, &token("acme", "bob", 300))
        .await
        .unwrap()
}

/// A single node on `bus`, behind a cuttable proxy, with a subscriber through the proxy and a
/// publisher straight to the node.
struct Single {
    node: Node,
    proxy: DelayProxy,
    sub: BusClient,
    publisher: BusClient,
}

impl Single {
    async fn start(bus: &Bus, edit: impl FnOnce(&mut Config)) -> Self {
        let mut config = support::config();
        bus.apply(&mut config);
        unthrottled(&mut config);
        edit(&mut config);
        let node = support::start(config).await;
        let proxy = DelayProxy::start(node.local_addr(), Duration::ZERO)
            .await
            .unwrap();
        let mut sub = subscriber(proxy.addr()).await;
        sub.join("lobby").await.unwrap();
        // A first join asks for the room's position: nothing to recover yet.
        assert_eq!(recovered(&mut sub).await, (false, false, 0));
        let publisher = BusClient::connect(&node.socket_url(), &token("acme", "alice", 300))
            .await
            .unwrap();
        publisher.join("lobby").await.unwrap();
        Self {
            node,
            proxy,
            sub,
            publisher,
        }
    }

    /// Cuts the subscriber off, publishes `n` messages, lets it back in and returns its recovery.
    async fn miss(&mut self, tag: &str, n: usize) -> (bool, bool, u32) {
        self.proxy.cut();
        disconnected(&mut self.sub).await;
        publish_all(&self.publisher, "lobby", tag, n).await;
        self.proxy.restore();
        recovered(&mut self.sub).await
    }
}

// AC-HISTORY-10: a subscriber cut off while 1,000 messages are published gets all of them after it
// reconnects, in order, exactly once, with `recovered: true`, then live traffic with no seam.
#[tokio::test]
async fn ac_history_10_a_reconnecting_client_gets_every_missed_message_once_in_order() {
    for bus in Bus::both().await {
        let mut single = Single::start(&bus, |_| {}).await;
        publish_all(&single.publisher, "lobby", "before", 3).await;
        assert_eq!(
            messages(&mut single.sub, "lobby", 3).await,
            expected("before", 3)
        );
        let outcome = single.miss("missed", 1000).await;
        assert_eq!(outcome, (true, false, 1000), "{}", bus.name());
        assert_eq!(
            messages(&mut single.sub, "lobby", 1000).await,
            expected("missed", 1000),
            "{}",
            bus.name()
        );
        publish_all(&single.publisher, "lobby", "after", 2).await;
        assert_eq!(
            messages(&mut single.sub, "lobby", 2).await,
            expected("after", 2),
            "{}: live traffic follows with no duplicate at the seam",
            bus.name()
        );
        let metrics = single.node.metrics().render();
        assert!(
            metrics.contains("arqonbus_shield_recoveries_complete 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("arqonbus_shield_recovered_messages 1000\n"),
            "{metrics}"
        );
        single.node.shutdown().await;
    }
}

// AC-HISTORY-11: when retention dropped some of the missed messages the client is told
// `recovered: false` and gets what is left; when more were missed than the recovery limit it gets
// the newest ones and `truncated: true`.
#[tokio::test]
async fn ac_history_11_lost_or_cut_recoveries_say_so() {
    for bus in Bus::both().await {
        let mut single = Single::start(&bus, |config| {
            keep_ten(config);
            config.history.recovery_limit = 4;
        })
        .await;
        let outcome = single.miss("gone", 50).await;
        assert_eq!(outcome, (false, true, 4), "{}", bus.name());
        let got = messages(&mut single.sub, "lobby", 4).await;
        assert_eq!(got, ["gone-0046", "gone-0047", "gone-0048", "gone-0049"]);
        single.node.shutdown().await;
    }
}

// AC-HISTORY-11: retention alone (no limit hit) also gives `recovered: false`.
#[tokio::test]
async fn ac_history_11_retention_loss_is_not_a_recovery() {
    for bus in Bus::both().await {
        let mut single = Single::start(&bus, keep_ten).await;
        assert_eq!(
            single.miss("gone", 25).await,
            (false, false, 10),
            "{}",
            bus.name()
        );
        assert_eq!(
            messages(&mut single.sub, "lobby", 10).await,
            (15..25).map(|i| format!("gone-{i:04}")).collect::<Vec<_>>()
        );
        single.node.shutdown().await;
    }
}

/// Acme keeps ten messages per room.
fn keep_ten(config: &mut Config) {
    config.history.tenants.insert(
        "acme".to_owned(),
        TenantHistoryOverride {
            max_messages: Some(10),
            ..TenantHistoryOverride::default()
        },
    );
}

/// Sends a `HistoryRequest` for the newest `last` of "lobby" and returns its answer.
async fn ask(client: &mut support::Client, last: u32) -> Body {
    let id = client
        .send(v1::HistoryRequest {
            room: "lobby".into(),
            last,
            since: None,
        })
        .await;
    client.expect_reply(&id).await
}

// AC-HISTORY-12: a history request reads the session's own tenant only; a tenant without history
// gets HISTORY_UNAVAILABLE.
#[tokio::test]
async fn ac_history_12_history_requests_never_cross_a_tenant() {
    for bus in Bus::both().await {
        let mut config = support::config();
        bus.apply(&mut config);
        unthrottled(&mut config);
        config.history.tenants.insert(
            "nohist".to_owned(),
            TenantHistoryOverride {
                enabled: Some(false),
                ..TenantHistoryOverride::default()
            },
        );
        let node = support::start(config).await;
        let publisher = BusClient::connect(&node.socket_url(), &token("acme", "alice", 60))
            .await
            .unwrap();
        publisher.join("lobby").await.unwrap();
        publish_all(&publisher, "lobby", "acme-secret", 3).await;

        let (mut own, _) = connect(&node, &token("acme", "carol", 60)).await;
        let Body::HistoryPage(page) = ask(&mut own, 2).await else {
            panic!("no page")
        };
        let texts: Vec<String> = page
            .messages
            .iter()
            .filter_map(|e| match &e.body {
                Some(Body::Message(m)) => Some(String::from_utf8(m.payload.to_vec()).unwrap()),
                _ => None,
            })
            .collect();
        assert_eq!(
            texts,
            ["acme-secret-0001", "acme-secret-0002"],
            "{}",
            bus.name()
        );
        assert!(page.truncated, "3 matched, 2 asked for");

        let (mut other, _) = connect(&node, &token("beta", "mallory", 60)).await;
        let Body::HistoryPage(page) = ask(&mut other, 100).await else {
            panic!("no page")
        };
        assert!(page.messages.is_empty(), "{}: beta read acme", bus.name());

        let (mut off, _) = connect(&node, &token("nohist", "dave", 60)).await;
        let Body::Error(error) = ask(&mut off, 1).await else {
            panic!("no error")
        };
        assert_eq!(error.code, i32::from(v1::ErrorCode::HistoryUnavailable));
        node.shutdown().await;
    }
}

/// Runs one phase of a long scenario within a minute, naming it when it does not finish.
async fn phase<T>(name: &str, work: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_mins(1), work)
        .await
        .unwrap_or_else(|_| panic!("phase {name} did not finish within a minute"))
}

/// Publish limits far above what a test sends in a burst.
fn unthrottled(config: &mut Config) {
    let fast = arqon_config::Rate {
        per_sec: 1_000_000,
        burst: 100_000,
    };
    config.limits.tenant_defaults.connection_publish = fast;
    config.limits.tenant_defaults.tenant_publish = fast;
}

fn cluster_node(id: &str, urls: &[String], first: usize) -> Config {
    let mut config = support::config();
    unthrottled(&mut config);
    id.clone_into(&mut config.node.id);
    config.node.drain_timeout = arqon_config::Duration::from_secs(2);
    config.spine.kind = SpineKind::Nats;
    let mut ordered = urls.to_vec();
    ordered.rotate_left(first);
    config.spine.nats_urls = ordered;
    config
}

/// Publishes tagged sentinels from `from` until one reaches `to`; returns the messages `to` got
/// before the sentinel (a gap on the live path is filled before it).
async fn until_sentinel(from: &BusClient, to: &mut BusClient, tag: &str) -> Vec<String> {
    let mut got = Vec::new();
    for attempt in 0..100 {
        let sentinel = format!("{tag}-sentinel-{attempt}");
        from.publish("lobby", sentinel.clone().into_bytes(), "text/plain")
            .await
            .unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(500);
        while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, to.next_event()).await {
            if let Event::Message { payload, .. } = event {
                let text = String::from_utf8(payload.to_vec()).unwrap();
                if text == sentinel {
                    return got;
                }
                // Earlier sentinels (this phase's or the last's) are not data.
                if !text.contains("-sentinel-") {
                    got.push(text);
                }
            }
        }
    }
    panic!("no sentinel arrived")
}

// AC-HISTORY-13: over a three-node JetStream cluster, a subscriber whose node is drained while
// 1,000 messages are published reconnects to the other node and gets all 1,000 exactly once, in
// order; then a NATS node under its new node is killed mid-stream and nothing is lost either.
#[tokio::test]
async fn ac_history_13_rolling_a_node_and_killing_nats_lose_nothing() {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    let urls = cluster.urls();
    let node_a = support::start(cluster_node("shield-a", &urls, 0)).await;
    let node_b = support::start(cluster_node("shield-b", &urls, 1)).await;
    let node_c = support::start(cluster_node("shield-c", &urls, 2)).await;
    let balancer = Balancer::start(vec![node_a.local_addr(), node_b.local_addr()])
        .await
        .unwrap();
    let mut sub = subscriber(balancer.addr()).await;
    assert_eq!(
        balancer.given(),
        vec![1, 0],
        "the subscriber starts on node A"
    );
    sub.join("lobby").await.unwrap();
    recovered(&mut sub).await;
    let publisher = BusClient::connect(&node_c.socket_url(), &token("acme", "alice", 300))
        .await
        .unwrap();
    publisher.join("lobby").await.unwrap();
    // Interest crosses the cluster's routes after the join: wait until the path is open.
    phase("warm", until_sentinel(&publisher, &mut sub, "warm")).await;

    // Node A drains (a rolling restart) while 1,000 messages are published.
    let publishing = {
        let publisher = &publisher;
        async move { publish_all(publisher, "lobby", "roll", 1000).await }
    };
    let draining = node_a.shutdown();
    phase("roll", async { tokio::join!(publishing, draining) }).await;
    let mut got = Vec::new();
    let outcome = recovered(&mut sub).await;
    assert!(outcome.0, "recovered after the roll: {outcome:?}");
    got.extend(until_sentinel(&publisher, &mut sub, "rolled").await);
    assert_eq!(got, expected("roll", 1000), "every message once, in order");
    assert_eq!(
        balancer.open(),
        vec![0, 1],
        "the subscriber is on node B now"
    );

    // The NATS node under node B dies halfway through 1,000 more published from node C.
    phase("kill", async {
        for i in 0..1000 {
            if i == 500 {
                cluster.kill(1).await.unwrap();
            }
            publisher
                .publish("lobby", format!("kill-{i:04}").into_bytes(), "text/plain")
                .await
                .unwrap();
        }
    })
    .await;
    let got = until_sentinel(&publisher, &mut sub, "killed").await;
    assert_eq!(
        got,
        expected("kill", 1000),
        "nothing lost when NATS node 1 died"
    );
    node_b.shutdown().await;
    node_c.shutdown().await;
}

//! The NATS Spine over a real 3-node cluster: cross-node delivery and surviving the loss of a node.

use std::time::Duration;

use arqon_spine::{NatsConfig, NatsSpine, Spine};
use arqon_testkit::NatsCluster;

use crate::common::{await_route, expect_numbered, number, publish_numbered, recv_data, room};

async fn connect(urls: Vec<String>) -> NatsSpine {
    NatsSpine::connect(&NatsConfig::new(urls)).await.unwrap()
}

/// Which node of `cluster` the spine is connected to.
fn node_of(cluster: &NatsCluster, spine: &NatsSpine) -> usize {
    let port = spine.client().server_info().port;
    cluster
        .nodes()
        .iter()
        .position(|n| n.port() == port)
        .expect("connected to a node outside the cluster")
}

// AC-SPINE-11
#[tokio::test]
async fn ac_spine_11_publish_on_one_node_receive_on_another() {
    let cluster = NatsCluster::start(3).await.unwrap();
    let publisher = connect(vec![cluster.node(0).url()]).await;
    let subscriber = connect(vec![cluster.node(2).url()]).await;
    assert_eq!(node_of(&cluster, &subscriber), 2);
    let subject = room("acme", "lobby");
    let mut sub = subscriber.subscribe(&subject).await.unwrap();
    assert!(await_route(&publisher, &mut sub).await.is_empty());
    publish_numbered(&publisher, &subject, 0, 500).await;
    expect_numbered(&mut sub, 0, 500).await;
}

// AC-SPINE-12
#[tokio::test]
async fn ac_spine_12_node_killed_mid_stream_then_clients_keep_working() {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    let subscriber = connect(cluster.urls()).await;
    let victim = node_of(&cluster, &subscriber);
    let publisher = connect(vec![cluster.node((victim + 1) % 3).url()]).await;
    let subject = room("acme", "survives");
    let mut sub = subscriber.subscribe(&subject).await.unwrap();
    assert!(await_route(&publisher, &mut sub).await.is_empty());
    publish_numbered(&publisher, &subject, 0, 100).await;
    expect_numbered(&mut sub, 0, 100).await;

    // Mid-stream: a publisher keeps going while the subscriber's node dies.
    let mut status = subscriber.watch_status();
    let streaming = {
        let publisher = publisher.clone();
        let subject = subject.clone();
        tokio::spawn(async move { publish_numbered(&publisher, &subject, 100, 2000).await })
    };
    cluster.kill(victim).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| !s.connected || s.reconnects > 0),
    )
    .await
    .expect("the disconnect was not reported")
    .unwrap();
    tokio::time::timeout(
        Duration::from_secs(30),
        status.wait_for(|s| s.connected && s.reconnects >= 1),
    )
    .await
    .expect("no reconnect")
    .unwrap();
    assert_ne!(node_of(&cluster, &subscriber), victim);
    streaming.await.unwrap();

    // At-most-once across the loss, but never out of order or duplicated.
    let mut seen: Vec<u32> = await_route(&publisher, &mut sub)
        .await
        .iter()
        .map(number)
        .collect();
    publish_numbered(&publisher, &subject, 10_000, 1).await;
    while seen.last() != Some(&10_000) {
        seen.push(number(&recv_data(&mut sub).await));
    }
    let mut last = 99;
    for n in seen {
        assert!(n > last, "{n} after {last}");
        last = n;
    }
    // After the reconnect: nothing lost, in order, both ways.
    publish_numbered(&publisher, &subject, 20_000, 500).await;
    expect_numbered(&mut sub, 20_000, 500).await;
    let back = room("acme", "answers");
    let mut answers = publisher.subscribe(&back).await.unwrap();
    assert!(await_route(&subscriber, &mut answers).await.is_empty());
    publish_numbered(&subscriber, &back, 0, 500).await;
    expect_numbered(&mut answers, 0, 500).await;
}

//! Two Shield nodes over a 3-node NATS cluster, including a NATS node killed mid-stream.

use std::time::Duration;

use arqon_config::SpineKind;
use arqon_proto::v1::envelope::Body;
use arqon_testkit::NatsCluster;

use crate::support::{self, Client, connect, token};

/// Publishes `payload` from `from` until `to` receives it (the first messages after a join or a
/// reconnect may race the subscription's propagation through the cluster; the spine is
/// at-most-once). Each attempt waits up to 300 ms for delivery.
async fn deliver(from: &mut Client, to: &mut Client, payload: &str) -> u32 {
    for attempt in 1..=60 {
        let tagged = format!("{payload}#{attempt}");
        from.publish("lobby", tagged.as_bytes()).await;
        let got = tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                match to.next_envelope().await.map(|e| e.body) {
                    Some(Some(Body::Message(m))) if m.payload.starts_with(payload.as_bytes()) => {
                        return true;
                    }
                    Some(_) => {}
                    None => return false,
                }
            }
        })
        .await;
        if got == Ok(true) {
            return attempt;
        }
    }
    panic!("{payload} never arrived");
}

// AC-SHIELD-6
#[tokio::test]
async fn clients_on_two_nodes_talk_over_a_cluster_and_survive_a_nats_node_kill() {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    let urls = cluster.urls();
    let node_config = |id: &str, first: usize| {
        let mut config = support::config();
        config.node.id = id.to_owned();
        config.spine.kind = SpineKind::Nats;
        // Each node starts on a different server and knows the others for failover.
        let mut ordered = urls.clone();
        ordered.rotate_left(first);
        config.spine.nats_urls = ordered;
        config
    };
    let node1 = support::start(node_config("shield-1", 0)).await;
    let node2 = support::start(node_config("shield-2", 1)).await;
    let (mut a, _) = connect(&node1, &token("acme", "alice", 120)).await;
    let (mut b, _) = connect(&node2, &token("acme", "bob", 120)).await;
    a.join("lobby").await;
    b.join("lobby").await;

    deliver(&mut a, &mut b, "A-to-B").await;
    deliver(&mut b, &mut a, "B-to-A").await;
    // Messages in a stream arrive in order once the route is up.
    for i in 0..20 {
        a.publish("lobby", format!("seq-{i}").as_bytes()).await;
    }
    for i in 0..20 {
        b.expect_message(format!("seq-{i}").as_bytes()).await;
    }

    // Kill a NATS node mid-stream; both clients keep working after the reconnect.
    cluster.kill(0).await.unwrap();
    deliver(&mut a, &mut b, "after-kill-A").await;
    deliver(&mut b, &mut a, "after-kill-B").await;
    drop((a, b));
    node1.shutdown().await;
    node2.shutdown().await;
}

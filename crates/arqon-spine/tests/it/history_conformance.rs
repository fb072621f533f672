//! The one conformance suite both history stores pass (`specs/history.md`): the embedded log and a
//! `JetStream` stream on a real `nats-server`, single node and three-node cluster.

use std::sync::Arc;
use std::time::Duration;

use arqon_spine::{
    EmbeddedSpine, HistoryConfig, HistoryError, HistoryQuery, NatsConfig, NatsSpine, Retention,
    Spine,
};
use arqon_testkit::{NatsCluster, NatsServer};

use crate::common::{publish, recv, room, tenant};

fn retention(max_messages: u64) -> Retention {
    Retention {
        max_messages,
        max_bytes: 1024 * 1024,
        max_age: Duration::from_mins(10),
    }
}

/// History for every tenant but `nohist`.
fn config(max_messages: u64) -> HistoryConfig {
    HistoryConfig {
        default: Some(retention(max_messages)),
        tenants: [(tenant("nohist"), None)].into_iter().collect(),
        replicas: 0,
    }
}

enum Keep {
    Single(#[allow(dead_code, reason = "kept alive for the test")] Box<NatsServer>),
    Cluster(Box<NatsCluster>),
    Nothing,
}

struct Store {
    spine: Arc<dyn Spine>,
    keep: Keep,
}

impl Store {
    fn embedded(max_messages: u64) -> Self {
        Self {
            spine: Arc::new(EmbeddedSpine::with_history(64, config(max_messages))),
            keep: Keep::Nothing,
        }
    }

    async fn nats(max_messages: u64) -> Self {
        let server = NatsServer::start_jetstream().await.unwrap();
        let mut nats = NatsConfig::new([server.url()]);
        nats.history = config(max_messages);
        Self {
            spine: Arc::new(NatsSpine::connect(&nats).await.unwrap()),
            keep: Keep::Single(Box::new(server)),
        }
    }

    async fn cluster(max_messages: u64) -> Self {
        let cluster = NatsCluster::start(3).await.unwrap();
        let mut nats = NatsConfig::new(cluster.urls());
        nats.history = config(max_messages);
        Self {
            spine: Arc::new(NatsSpine::connect(&nats).await.unwrap()),
            keep: Keep::Cluster(Box::new(cluster)),
        }
    }
}

// AC-HISTORY-1: offsets grow per tenant, each live message carries its offset, its room
// predecessor and the epoch, and a read returns exactly what was stored, in order.
async fn ac_history_1_live_positions_match_the_stored_log(store: &Store) {
    let spine = &store.spine;
    let (a, b) = (room("acme", "a"), room("acme", "b"));
    let mut sub_a = spine.subscribe(&a).await.unwrap();
    publish(spine.as_ref(), &a, b"a1").await;
    publish(spine.as_ref(), &b, b"b1").await;
    publish(spine.as_ref(), &a, b"a2").await;
    let first = recv(&mut sub_a).await.stored.unwrap();
    let second = recv(&mut sub_a).await.stored.unwrap();
    assert!(second.offset > first.offset + 1, "b1 sits between them");
    assert_eq!(second.previous, first.offset);
    assert_eq!(first.epoch, second.epoch);
    let history = spine.history().unwrap();
    let page = history
        .read(
            &a,
            HistoryQuery::After {
                offset: 0,
                limit: 10,
            },
        )
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = page.messages.iter().map(|m| &m.payload[..]).collect();
    assert_eq!(payloads, [b"a1".as_slice(), b"a2"]);
    assert_eq!(page.read.offsets, vec![first.offset, second.offset]);
    assert_eq!(page.read.epoch, &*first.epoch);
    assert_eq!(page.read.retained_total, 2);
    assert!(page.read.last_offset >= second.offset);
    let since = history
        .read(
            &a,
            HistoryQuery::After {
                offset: first.offset,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(since.read.offsets, vec![second.offset]);
    assert_eq!(since.read.retained_after, 1);
}

// AC-HISTORY-2: the per-room cap evicts oldest first and reports what the recovery rule needs;
// `Last` and a limited `After` keep the newest.
async fn ac_history_2_retention_and_limits(store: &Store) {
    let spine = &store.spine;
    let r = room("acme", "capped");
    for i in 0..8u8 {
        publish(spine.as_ref(), &r, &[i]).await;
    }
    let history = spine.history().unwrap();
    let last = history
        .read(&r, HistoryQuery::Last { count: 3 })
        .await
        .unwrap();
    let bytes: Vec<u8> = last.messages.iter().map(|m| m.payload[0]).collect();
    assert_eq!(bytes, [5, 6, 7]);
    assert_eq!(last.read.retained_total, 5, "the cap is 5");
    let all = history
        .read(
            &r,
            HistoryQuery::After {
                offset: 0,
                limit: 2,
            },
        )
        .await
        .unwrap();
    let bytes: Vec<u8> = all.messages.iter().map(|m| m.payload[0]).collect();
    assert_eq!(bytes, [6, 7]);
    assert_eq!(all.read.retained_after, 5);
    assert_eq!(all.read.room_cap, 5);
    // A gap's range: every message strictly between, oldest first, whatever is newer.
    let offsets = &last.read.offsets;
    let between = history
        .read(
            &r,
            HistoryQuery::Between {
                after: offsets[0],
                before: offsets[2],
            },
        )
        .await
        .unwrap();
    assert_eq!(between.read.offsets, vec![offsets[1]]);
}

// AC-HISTORY-8: a tenant without history is refused, and a read of another tenant's room never
// sees this tenant's messages.
async fn ac_history_8_reads_stay_in_their_tenant(store: &Store) {
    let spine = &store.spine;
    publish(spine.as_ref(), &room("acme", "shared"), b"secret").await;
    let history = spine.history().unwrap();
    let other = history
        .read(&room("beta", "shared"), HistoryQuery::Last { count: 10 })
        .await
        .unwrap();
    assert!(other.messages.is_empty());
    let refused = history
        .read(&room("nohist", "shared"), HistoryQuery::Last { count: 10 })
        .await;
    assert!(
        matches!(refused, Err(HistoryError::Disabled { .. })),
        "{refused:?}"
    );
    // A tenant without history still routes live traffic, with no position.
    let plain = room("nohist", "live");
    let mut sub = spine.subscribe(&plain).await.unwrap();
    publish(spine.as_ref(), &plain, b"x").await;
    assert_eq!(recv(&mut sub).await.stored, None);
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Store::embedded(5)).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(&super::Store::nats(5).await).await;
                }
            )*
        }
    };
}

conformance!(
    ac_history_1_live_positions_match_the_stored_log,
    ac_history_2_retention_and_limits,
    ac_history_8_reads_stay_in_their_tenant,
);

// AC-HISTORY-1 on a three-node JetStream cluster: the stream is R3 and reads and live positions
// agree there too.
#[tokio::test]
async fn ac_history_1_three_node_cluster_keeps_three_replicas() {
    let store = Store::cluster(5).await;
    let Keep::Cluster(cluster) = &store.keep else {
        unreachable!()
    };
    ac_history_1_live_positions_match_the_stored_log(&store).await;
    let jsz = cluster
        .node(0)
        .monitor("/jsz?accounts=true&streams=true&config=true")
        .await
        .unwrap();
    let streams: Vec<&serde_json::Value> = jsz["account_details"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|account| account["stream_detail"].as_array().into_iter().flatten())
        .collect();
    let acme = streams
        .iter()
        .find(|s| s["name"] == "ARQON_HISTORY_acme")
        .unwrap_or_else(|| panic!("no history stream in {jsz}"));
    assert_eq!(acme["config"]["num_replicas"], 3, "{acme}");
    assert_eq!(acme["config"]["max_msgs_per_subject"], 5, "{acme}");
}

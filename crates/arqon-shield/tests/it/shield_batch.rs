//! Batch frames (`specs/protocol.md`, "Batch frames"): only a client that offered
//! `arqon.v1.batch` gets them, and every envelope arrives once, in order, batched or not.

use std::sync::atomic::Ordering;
use std::time::Duration;

use arqon_config::Rate;
use arqon_proto::batch;
use arqon_proto::v1::{self, envelope::Body};
use bytes::Bytes;

use crate::support::{self, Client, connect, connect_with, token};

const MESSAGES: usize = 1_000;

/// Connects the way a browser SDK that takes batches does: `arqon.v1.batch, bearer.<token>`.
async fn connect_batch(node: &arqon_shield::Node, token: &str) -> (Client, Option<String>) {
    let offer = format!("{}, bearer.{token}", batch::SUBPROTOCOL);
    connect_with(node, Some(("sec-websocket-protocol", offer)))
        .await
        .unwrap()
}

/// What a client saw: the payloads of its messages in order, the size of every batch frame, and
/// whether it had the `Ack` of `awaited` (when given).
#[derive(Default)]
struct Seen {
    payloads: Vec<Bytes>,
    batches: Vec<usize>,
    acked: bool,
}

/// Reads frames, unpacking batches, until `messages` messages arrived and the ack of `awaited`
/// (if any) did.
async fn read(client: &mut Client, messages: usize, awaited: Option<&str>) -> Seen {
    let mut seen = Seen::default();
    while seen.payloads.len() < messages || (awaited.is_some() && !seen.acked) {
        let frame = tokio::time::timeout(Duration::from_secs(20), client.next_envelope())
            .await
            .expect("frames keep coming")
            .expect("the socket stays open");
        if let Some(Body::Batch(b)) = &frame.body {
            assert!(
                frame.header.is_none(),
                "a batch frame has no header of its own"
            );
            seen.batches.push(b.envelopes.len());
        }
        for envelope in batch::unpack(frame) {
            let header = envelope.header.unwrap_or_default();
            match envelope.body {
                Some(Body::Batch(_)) => panic!("a batch never holds a batch"),
                Some(Body::Message(m)) => seen.payloads.push(m.payload),
                Some(Body::Ack(_)) if Some(header.correlation_id.as_str()) == awaited => {
                    seen.acked = true;
                }
                _ => {}
            }
        }
    }
    seen
}

// AC-PROTOCOL-18, AC-PROTOCOL-19
#[tokio::test]
async fn ac_protocol_18_19_batch_frames_go_only_to_a_client_that_offered_them_in_order() {
    let mut config = support::config();
    config.limits.tenant_defaults.connection_publish = Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    config.limits.tenant_defaults.tenant_publish = Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    let node = support::start(config).await;

    // The offer is echoed; a browser's plain `arqon.v1` and a client with no offer get no batch.
    let (mut batched, protocol) = connect_batch(&node, &token("acme", "bat", 60)).await;
    assert_eq!(protocol.as_deref(), Some(batch::SUBPROTOCOL));
    let offer = format!("arqon.v1, bearer.{}", token("acme", "browser", 60));
    let (mut browser, protocol) = connect_with(&node, Some(("sec-websocket-protocol", offer)))
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("arqon.v1"));
    let (mut plain, _) = connect(&node, &token("acme", "plain", 60)).await;
    let (mut publisher, _) = connect(&node, &token("acme", "pub", 60)).await;

    let join = batched
        .send(v1::Join {
            room: "burst".to_owned(),
            ..v1::Join::default()
        })
        .await;
    let welcome_and_ack = read(&mut batched, 0, Some(&join)).await;
    assert!(welcome_and_ack.acked);
    let join = browser
        .send(v1::Join {
            room: "burst".to_owned(),
            ..v1::Join::default()
        })
        .await;
    let _ = read(&mut browser, 0, Some(&join)).await;
    plain.join("burst").await;
    publisher.join("burst").await;

    // Every subscriber reads while the publisher sends, so no queue overflows.
    let readers: Vec<_> = [("batched", batched), ("browser", browser), ("plain", plain)]
        .into_iter()
        .map(|(name, mut client)| {
            tokio::spawn(async move { (name, read(&mut client, MESSAGES, None).await) })
        })
        .collect();
    // Bursts of 100 publishes, each sent before any of its acks is read.
    for chunk in 0..MESSAGES / 100 {
        let mut last = String::new();
        for i in chunk * 100..(chunk + 1) * 100 {
            last = publisher
                .send(v1::Publish {
                    room: "burst".to_owned(),
                    payload: Bytes::from(i.to_string()),
                    content_type: String::new(),
                })
                .await;
        }
        publisher.expect_ack(&last).await;
    }

    let expected: Vec<Bytes> = (0..MESSAGES).map(|i| Bytes::from(i.to_string())).collect();
    for reader in readers {
        let (name, seen) = reader.await.unwrap();
        assert_eq!(
            seen.payloads, expected,
            "{name}: every message once, in order"
        );
        if name == "batched" {
            assert!(
                seen.batches.iter().any(|&n| n >= 2),
                "bursts of 100 went out in batch frames: {:?}",
                seen.batches
            );
            // The node counts what it batched: these frames (and any around the join) are all
            // of it.
            let metrics = node.metrics();
            let all = || seen.batches.iter().chain(&welcome_and_ack.batches);
            let frames = all().count() as u64;
            let envelopes: usize = all().sum();
            assert_eq!(metrics.batch_frames.load(Ordering::Relaxed), frames);
            assert_eq!(
                metrics.batched_envelopes.load(Ordering::Relaxed),
                envelopes as u64
            );
        } else {
            assert!(seen.batches.is_empty(), "{name} did not offer batches");
        }
    }
}

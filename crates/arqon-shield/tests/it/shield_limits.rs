//! Per-tenant limits, admission (503 + Retry-After), slow consumers.

use std::sync::atomic::Ordering;

use arqon_config::{ByteSize, Rate};
use arqon_proto::v1::{self, envelope::Body};

use crate::support::{self, connect, connect_with, token};

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

// AC-SHIELD-11
#[tokio::test]
async fn payload_over_the_limit_and_publish_rate_get_typed_errors_and_route_nothing() {
    let mut config = support::config();
    config.limits.tenant_defaults.max_payload = ByteSize::kib(1);
    config.limits.tenant_defaults.connection_publish = Rate {
        per_sec: 1,
        burst: 3,
    };
    let node = support::start(config).await;
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut b, _) = connect(&node, &token("acme", "bob", 60)).await;
    a.join("lobby").await;
    b.join("lobby").await;

    let big = a.publish("lobby", &[b'x'; 2048]).await;
    match a.expect_reply(&big).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::PayloadTooLarge),
        other => panic!("{other:?}"),
    }
    // Burst of 3, then RATE_LIMITED with a retry-after.
    for i in 0..3u8 {
        let id = a.publish("lobby", &[b'0' + i]).await;
        a.expect_ack(&id).await;
    }
    let limited = a.publish("lobby", b"too-fast").await;
    match a.expect_reply(&limited).await {
        Body::Error(e) => {
            assert_eq!(e.code(), v1::ErrorCode::RateLimited);
            assert!(e.retry_after_ms > 0 && e.retry_after_ms <= 1000, "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    // B saw the three allowed messages in order and none of the refused ones.
    for i in 0..3u8 {
        let m = b.next_message().await;
        assert_eq!(&m[..], &[b'0' + i]);
    }
    assert_eq!(node.metrics().errors_sent.get("RATE_LIMITED"), 1);
    drop((a, b));
    node.shutdown().await;
}

// AC-SHIELD-11
#[tokio::test]
async fn tenant_publish_bucket_is_per_tenant() {
    let mut config = support::config();
    config.limits.tenant_defaults.tenant_publish = Rate {
        per_sec: 1,
        burst: 2,
    };
    let node = support::start(config).await;
    let (mut a1, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut a2, _) = connect(&node, &token("acme", "amy", 60)).await;
    let (mut b, _) = connect(&node, &token("beta", "bob", 60)).await;
    for c in [&mut a1, &mut a2, &mut b] {
        c.join("r").await;
    }
    let id = a1.publish("r", b"1").await;
    a1.expect_ack(&id).await;
    let id = a2.publish("r", b"2").await;
    a2.expect_ack(&id).await;
    // The tenant's bucket is empty whichever acme connection asks.
    let id = a1.publish("r", b"3").await;
    assert!(
        matches!(a1.expect_reply(&id).await, Body::Error(e) if e.code() == v1::ErrorCode::RateLimited)
    );
    // Another tenant is not affected by acme's noise.
    let id = b.publish("r", b"b").await;
    b.expect_ack(&id).await;
    drop((a1, a2, b));
    node.shutdown().await;
}

// AC-SHIELD-10
#[tokio::test]
async fn tenant_and_user_connection_caps_give_503_while_other_tenants_connect() {
    let mut config = support::config();
    config.limits.tenant_defaults.max_connections = 2;
    config.limits.tenant_defaults.max_connections_per_user = 1;
    let node = support::start(config).await;
    let first = connect(&node, &token("acme", "alice", 60)).await;
    let user_full = connect_with(&node, Some(bearer(&token("acme", "alice", 60))))
        .await
        .err()
        .unwrap();
    assert_eq!(user_full.status, 503);
    assert_eq!(user_full.retry_after.as_deref(), Some("1"));
    let second = connect(&node, &token("acme", "amy", 60)).await;
    let tenant_full = connect_with(&node, Some(bearer(&token("acme", "ann", 60))))
        .await
        .err()
        .unwrap();
    assert_eq!(tenant_full.status, 503);
    let other = connect(&node, &token("beta", "bob", 60)).await;
    assert_eq!(node.metrics().admission_rejections.get("user_full"), 1);
    assert_eq!(node.metrics().admission_rejections.get("tenant_full"), 1);
    // A closed connection frees its slot.
    drop(first);
    let again = tokio::time::timeout(support::WAIT, async {
        loop {
            if let Ok(ok) = connect_with(&node, Some(bearer(&token("acme", "alice", 60)))).await {
                return ok;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    drop((second, other, again));
    node.shutdown().await;
}

// AC-SHIELD-9
#[tokio::test]
async fn node_cap_and_accept_rate_give_503_with_retry_after_and_the_node_keeps_serving() {
    let mut config = support::config();
    config.limits.max_connections = 2;
    let node = support::start(config).await;
    let a = connect(&node, &token("acme", "a", 60)).await;
    let b = connect(&node, &token("beta", "b", 60)).await;
    let full = connect_with(&node, Some(bearer(&token("gamma", "c", 60))))
        .await
        .err()
        .unwrap();
    assert_eq!(full.status, 503);
    assert!(full.retry_after.is_some());
    assert_eq!(node.metrics().admission_rejections.get("node_full"), 1);
    drop((a, b));
    node.shutdown().await;

    let mut config = support::config();
    config.limits.accept = Rate {
        per_sec: 1,
        burst: 2,
    };
    let node = support::start(config).await;
    let a = connect(&node, &token("acme", "a", 60)).await;
    let b = connect(&node, &token("acme", "b", 60)).await;
    let throttled = connect_with(&node, Some(bearer(&token("acme", "c", 60))))
        .await
        .err()
        .unwrap();
    assert_eq!(throttled.status, 503);
    assert_eq!(throttled.retry_after.as_deref(), Some("1"));
    assert_eq!(node.metrics().admission_rejections.get("accept_rate"), 1);
    // Existing sessions are untouched.
    let (mut a, _) = a;
    let id = a.send(v1::Heartbeat {}).await;
    assert!(matches!(a.expect_reply(&id).await, Body::Pong(_)));
    drop((a, b));
    node.shutdown().await;
}

// AC-SHIELD-12
#[tokio::test]
async fn a_client_that_never_reads_is_dropped_then_closed_while_others_keep_receiving() {
    let mut config = support::config();
    config.limits.outbound_queue_depth = 4;
    config.limits.slow_consumer_threshold = 4;
    config.limits.tenant_defaults.connection_publish = Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    config.limits.tenant_defaults.tenant_publish = Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    let node = support::start(config).await;
    let (mut sleeper, _) = connect(&node, &token("acme", "sleepy", 60)).await;
    sleeper.join("firehose").await;
    let (mut reader, _) = connect(&node, &token("acme", "reader", 60)).await;
    reader.join("firehose").await;
    let (mut publisher, _) = connect(&node, &token("acme", "pub", 60)).await;
    publisher.join("firehose").await;

    let counter = tokio::spawn(async move {
        let mut seen = 0u64;
        while let Some(envelope) = reader.next_envelope().await {
            if let Some(Body::Message(m)) = envelope.body {
                if &m.payload[..] == b"END" {
                    return seen;
                }
                seen += 1;
            }
        }
        seen
    });
    let payload = vec![b'z'; 48 * 1024];
    let closed = || node.metrics().sessions_closed.get("slow_consumer");
    let mut sent = 0u64;
    while closed() == 0 {
        assert!(sent < 5_000, "the sleeper was never closed");
        let id = publisher.publish("firehose", &payload).await;
        publisher.expect_ack(&id).await;
        sent += 1;
    }
    let id = publisher.publish("firehose", b"END").await;
    publisher.expect_ack(&id).await;
    let seen = tokio::time::timeout(support::WAIT, counter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen, sent, "the reading client lost messages");
    let dropped = node.metrics().dropped_slow.load(Ordering::Relaxed);
    assert!(dropped > 4, "dropped {dropped}");
    // Memory stays bounded: the sleeper's queue never held more than its depth, and the
    // sleeper's session is gone.
    assert_eq!(node.metrics().connections_open.load(Ordering::Relaxed), 2);
    drop((sleeper, publisher));
    node.shutdown().await;
}

// AC-SHIELD-18
#[tokio::test]
async fn a_connection_storm_is_throttled_with_503_and_the_node_survives() {
    let mut config = support::config();
    config.limits.accept = Rate {
        per_sec: 20,
        burst: 50,
    };
    let node = std::sync::Arc::new(support::start(config).await);
    let (mut early, _) = connect(&node, &token("acme", "early", 60)).await;
    let tokens: Vec<String> = (0..300)
        .map(|i| token("acme", &format!("u{i}"), 60))
        .collect();
    let storm: Vec<_> = tokens
        .into_iter()
        .map(|t| {
            let node = std::sync::Arc::clone(&node);
            tokio::spawn(async move {
                match connect_with(&node, Some(bearer(&t))).await {
                    Ok((client, _)) => (true, None, Some(client)),
                    Err(refused) => {
                        assert_eq!(refused.status, 503);
                        (false, refused.retry_after, None)
                    }
                }
            })
        })
        .collect();
    let mut admitted = Vec::new();
    let mut refused = 0;
    for handle in storm {
        let (ok, retry_after, client) = handle.await.unwrap();
        if ok {
            admitted.extend(client);
        } else {
            assert!(retry_after.is_some(), "503 without Retry-After");
            refused += 1;
        }
    }
    assert!(refused > 0, "nothing was throttled");
    assert!(admitted.len() >= 49, "only {} admitted", admitted.len());
    assert_eq!(admitted.len() + refused, 300);
    assert_eq!(
        node.metrics().admission_rejections.get("accept_rate"),
        refused as u64
    );
    // Every admitted client got its Welcome; the node still serves the earlier session.
    for client in &mut admitted {
        client
            .expect(|body| matches!(body, Body::Welcome(_)).then_some(()))
            .await;
    }
    let id = early.send(v1::Heartbeat {}).await;
    assert!(matches!(early.expect_reply(&id).await, Body::Pong(_)));
    assert_eq!(support::http_get(&node, "/healthz").await.0, 200);
    drop((early, admitted));
    std::sync::Arc::into_inner(node).unwrap().shutdown().await;
}

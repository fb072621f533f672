//! Fault injection on the NATS Spine: a slow network through the delaying proxy, cuts, and no server.

use std::net::SocketAddr;
use std::time::Duration;

use arqon_spine::{Bytes, Headers, NatsConfig, NatsSpine, Spine, SpineError};
use arqon_testkit::{DelayProxy, NatsServer, free_port};
use tokio::time::Instant;

use crate::common::{
    await_route, expect_numbered, number, publish, publish_numbered, recv_data, room,
};

/// A real server, a proxy in front of it adding `delay`, and one spine through each path.
struct Proxied {
    _server: NatsServer,
    proxy: DelayProxy,
    via_proxy: NatsSpine,
    direct: NatsSpine,
}

async fn proxied(delay: Duration) -> Proxied {
    let server = NatsServer::start().await.unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], server.port()));
    let proxy = DelayProxy::start(addr, delay).await.unwrap();
    let connect =
        |url: String| async move { NatsSpine::connect(&NatsConfig::new([url])).await.unwrap() };
    Proxied {
        via_proxy: connect(proxy.nats_url()).await,
        direct: connect(server.url()).await,
        proxy,
        _server: server,
    }
}

// AC-SPINE-13
#[tokio::test]
async fn ac_spine_13_slow_nats_delays_but_loses_nothing() {
    let delay = Duration::from_millis(40);
    let Proxied {
        via_proxy: slow,
        direct: fast,
        proxy,
        _server: _alive,
    } = proxied(delay).await;
    assert_eq!(proxy.delay(), delay);
    let subject = room("acme", "slow");
    let mut sub = slow.subscribe(&subject).await.unwrap();
    // Fast publisher, slow subscriber: each message is held by the proxy on its way in.
    let mut sent = Vec::new();
    for n in 0..300u32 {
        sent.push(Instant::now());
        publish(&fast, &subject, &n.to_be_bytes()).await;
    }
    for n in 0..300u32 {
        let m = recv_data(&mut sub).await;
        assert_eq!(number(&m), n);
        assert!(
            sent[n as usize].elapsed() >= delay,
            "message {n} was not delayed"
        );
    }
    // Slow publisher: its publishes are held too, and still all arrive in order.
    let mut fast_sub = fast.subscribe(&subject).await.unwrap();
    publish_numbered(&slow, &subject, 1000, 300).await;
    expect_numbered(&mut fast_sub, 1000, 300).await;
    expect_numbered(&mut sub, 1000, 300).await;
}

// AC-SPINE-12
#[tokio::test]
async fn ac_spine_12_cut_connection_is_reported_and_recovered() {
    let Proxied {
        via_proxy: spine,
        direct,
        proxy,
        _server: _alive,
    } = proxied(Duration::ZERO).await;
    let subject = room("acme", "cut");
    let mut sub = spine.subscribe(&subject).await.unwrap();
    let mut status = spine.watch_status();
    proxy.cut();
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| !s.connected))
        .await
        .expect("the cut was not reported")
        .unwrap();
    assert!(!spine.status().connected);
    proxy.restore();
    tokio::time::timeout(Duration::from_secs(30), status.wait_for(|s| s.connected))
        .await
        .expect("no reconnect")
        .unwrap();
    assert_eq!(spine.status().reconnects, 1);
    // The subscription was restored by the reconnect.
    assert!(await_route(&direct, &mut sub).await.is_empty());
    publish_numbered(&direct, &subject, 0, 200).await;
    expect_numbered(&mut sub, 0, 200).await;
}

// AC-SPINE-14
#[tokio::test]
async fn ac_spine_14_no_server_is_a_typed_connect_error() {
    let url = format!("nats://127.0.0.1:{}", free_port().unwrap());
    let mut config = NatsConfig::new([url]);
    config.connect_timeout = Duration::from_secs(2);
    let started = Instant::now();
    let result = NatsSpine::connect(&config).await;
    assert!(
        matches!(result, Err(SpineError::Connect { .. })),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}

// AC-SPINE-16
#[tokio::test]
async fn ac_spine_16_oversized_payload_is_refused_and_the_connection_lives_on() {
    let server = NatsServer::start().await.unwrap();
    let spine = NatsSpine::connect(&NatsConfig::new([server.url()]))
        .await
        .unwrap();
    let subject = room("acme", "big");
    let mut sub = spine.subscribe(&subject).await.unwrap();
    let max = spine.client().server_info().max_payload;
    let too_big = Bytes::from(vec![0u8; max + 1]);
    let refused = spine.publish(&subject, Headers::new(), too_big).await;
    assert!(
        matches!(refused, Err(SpineError::Publish { .. })),
        "{refused:?}"
    );
    publish_numbered(&spine, &subject, 0, 10).await;
    expect_numbered(&mut sub, 0, 10).await;
    assert!(spine.status().connected);
}

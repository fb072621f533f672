//! Session lifecycle over real sockets: refresh edges, expiry, heartbeats, protocol mismatch,
//! oversized frames and graceful drain.

use arqon_config::{ByteSize, Duration};
use arqon_proto::v1::{self, envelope::Body};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, connect, expired_token, token};

fn refresh(token: String) -> v1::Refresh {
    v1::Refresh { token }
}

// AC-SHIELD-7
#[tokio::test]
async fn refresh_extends_the_session_and_expiry_without_refresh_closes_with_4001() {
    let node = support::start(support::config()).await;
    // Both start with a token valid for 2 s; only `renewed` refreshes.
    let (mut control, _) = connect(&node, &token("acme", "alice", 2)).await;
    let (mut renewed, _) = connect(&node, &token("acme", "alice", 2)).await;
    let id = renewed.send(refresh(token("acme", "alice", 60))).await;
    renewed.expect_ack(&id).await;
    // The control session reaches its expiry and is closed with TOKEN_EXPIRED...
    assert_eq!(control.closed().await, Some(4001));
    // ...while the refreshed one, past the first token's expiry, still answers.
    let id = renewed.send(v1::Ping { nonce: 7 }).await;
    match renewed.expect_reply(&id).await {
        Body::Pong(p) => assert_eq!(p.nonce, 7),
        other => panic!("{other:?}"),
    }
    assert_eq!(node.metrics().sessions_closed.get("token_expired"), 1);
    drop(renewed);
    node.shutdown().await;
}

// AC-SHIELD-7
#[tokio::test]
async fn expired_or_invalid_refresh_is_refused_and_the_old_expiry_stays() {
    let node = support::start(support::config()).await;
    let (mut client, _) = connect(&node, &token("acme", "alice", 2)).await;
    let id = client.send(refresh(expired_token("acme", "alice"))).await;
    match client.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::TokenExpired),
        other => panic!("{other:?}"),
    }
    let id = client.send(refresh("garbage".to_owned())).await;
    match client.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::TokenInvalid),
        other => panic!("{other:?}"),
    }
    // The refused refreshes did not extend anything: the session still ends at the first expiry.
    assert_eq!(client.closed().await, Some(4001));
    node.shutdown().await;
}

// AC-SHIELD-7
#[tokio::test]
async fn refresh_for_another_user_or_tenant_closes_with_forbidden() {
    let node = support::start(support::config()).await;
    for (tenant, user) in [("acme", "mallory"), ("beta", "alice")] {
        let (mut client, _) = connect(&node, &token("acme", "alice", 60)).await;
        client.join("lobby").await;
        client.send(refresh(token(tenant, user, 60))).await;
        assert_eq!(client.closed().await, Some(4003), "{tenant}/{user}");
    }
    assert_eq!(node.metrics().sessions_closed.get("forbidden"), 2);
    node.shutdown().await;
}

// AC-SHIELD-14
#[tokio::test]
async fn a_silent_client_is_closed_with_heartbeat_timeout_and_heartbeats_keep_it_alive() {
    let mut config = support::config();
    config.session.heartbeat_interval = Duration::from_millis(200);
    config.session.idle_timeout = Duration::from_millis(800);
    let node = support::start(config).await;
    let (mut silent, _) = connect(&node, &token("acme", "ghost", 60)).await;
    let (mut alive, _) = connect(&node, &token("acme", "alice", 60)).await;
    let beat = tokio::spawn(async move {
        // Heartbeat every time the previous pong arrives until the silent one is gone.
        let mut interval = tokio::time::interval(std::time::Duration::from_millis(200));
        for _ in 0..15 {
            interval.tick().await;
            let id = alive.send(v1::Heartbeat {}).await;
            let _ = alive.expect_reply(&id).await;
        }
        alive
    });
    assert_eq!(silent.closed().await, Some(4005));
    let mut alive = beat.await.unwrap();
    let id = alive.send(v1::Heartbeat {}).await;
    assert!(matches!(alive.expect_reply(&id).await, Body::Pong(_)));
    assert_eq!(node.metrics().sessions_closed.get("heartbeat_timeout"), 1);
    drop(alive);
    node.shutdown().await;
}

// AC-SHIELD-8
#[tokio::test]
async fn text_json_and_garbage_get_error_envelopes_then_the_connection_is_closed() {
    let mut config = support::config();
    config.session.max_protocol_errors = 3;
    let node = support::start(config).await;
    let (mut bad, _) = connect(&node, &token("acme", "bad", 60)).await;
    let (mut watcher, _) = connect(&node, &token("acme", "watcher", 60)).await;
    bad.join("lobby").await;
    watcher.join("lobby").await;
    let offences = [
        (
            Message::text("{\"publish\":\"hi\"}"),
            v1::ErrorCode::TextFrame,
        ),
        (
            Message::binary(b"{\"room\":\"lobby\"}".to_vec()),
            v1::ErrorCode::ProtocolError,
        ),
        (
            Message::binary(vec![0xff, 0xfe, 0x01, 0x02]),
            v1::ErrorCode::ProtocolError,
        ),
    ];
    for (frame, expected) in offences {
        bad.send_raw(frame).await;
        let (code, _) = bad.expect_error().await;
        assert_eq!(code, expected);
    }
    bad.send_raw(Message::binary(vec![0x00])).await;
    assert_eq!(bad.closed().await, Some(4000));
    // Nothing was routed: the watcher's next message is a marker sent afterwards.
    let (mut marker, _) = connect(&node, &token("acme", "marker", 60)).await;
    marker.join("lobby").await;
    marker.publish("lobby", b"MARKER").await;
    let first = watcher.next_message().await;
    assert_eq!(&first[..], b"MARKER");
    assert_eq!(
        node.metrics()
            .protocol_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        4
    );
    drop((watcher, marker));
    node.shutdown().await;
}

// AC-SHIELD-13
#[tokio::test]
async fn an_oversized_frame_closes_the_connection_and_routes_nothing() {
    let mut config = support::config();
    config.limits.max_frame = ByteSize::kib(16);
    config.limits.tenant_defaults.max_payload = ByteSize::kib(15);
    let node = support::start(config).await;
    let (mut big, _) = connect(&node, &token("acme", "big", 60)).await;
    let (mut watcher, _) = connect(&node, &token("acme", "watcher", 60)).await;
    big.join("lobby").await;
    watcher.join("lobby").await;
    big.publish("lobby", &vec![b'x'; 64 * 1024]).await;
    let code = big.closed().await;
    assert!(
        code.is_none() || code == Some(4008) || code == Some(1009),
        "{code:?}"
    );
    let (mut marker, _) = connect(&node, &token("acme", "marker", 60)).await;
    marker.join("lobby").await;
    marker.publish("lobby", b"MARKER").await;
    let first = watcher.next_message().await;
    assert_eq!(&first[..], b"MARKER");
    drop((watcher, marker));
    node.shutdown().await;
}

// AC-SHIELD-15
#[tokio::test]
async fn shutdown_drains_clients_refuses_new_upgrades_and_fails_readyz() {
    let mut config = support::config();
    config.node.drain_timeout = Duration::from_secs(5);
    let node = support::start(config).await;
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut b, _) = connect(&node, &token("beta", "bob", 60)).await;
    a.join("lobby").await;
    assert_eq!(raw_status(node.local_addr(), "/readyz", None).await, 200);
    let addr = node.local_addr();
    let stopping = tokio::spawn(node.shutdown());
    for client in [&mut a, &mut b] {
        client
            .expect(|body| match body {
                Body::Drain(d) => Some(d.reconnect_after_ms),
                _ => None,
            })
            .await;
    }
    // While draining: not ready, and new upgrades get 503.
    assert_eq!(raw_status(addr, "/readyz", None).await, 503);
    let late = token("acme", "late", 60);
    assert_eq!(raw_status(addr, "/v1/socket", Some(&late)).await, 503);
    // Joins are refused while draining.
    let id = a
        .send(v1::Join {
            room: "other".to_owned(),
            metadata: std::collections::BTreeMap::new(),
            since: None,
        })
        .await;
    match a.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::ServerDraining),
        other => panic!("{other:?}"),
    }
    // One client leaves by itself; the other is closed at the drain deadline with 4007.
    drop(a);
    assert_eq!(b.closed().await, Some(4007));
    tokio::time::timeout(support::WAIT, stopping)
        .await
        .unwrap()
        .unwrap();
}

/// Status of a GET (a WebSocket upgrade when `token` is given) against a node by address.
async fn raw_status(addr: std::net::SocketAddr, path: &str, token: Option<&str>) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra = match token {
        Some(token) => format!(
            "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: Bearer {token}\r\n"
        ),
        None => "Connection: close\r\n".to_owned(),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n{extra}\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = vec![0u8; 64];
    let n = tokio::time::timeout(support::WAIT, stream.read(&mut head))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8_lossy(&head[..n]).into_owned();
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A frame with this header (correlation `id`) and `rest` after it.
fn frame_with_header(header: &v1::Header, rest: &[u8]) -> Message {
    use prost::Message as _;
    let mut bytes = v1::Envelope {
        header: Some(header.clone()),
        body: None,
    }
    .encode_to_vec();
    bytes.extend_from_slice(rest);
    Message::binary(bytes)
}

// AC-PROTOCOL-17: every refusal whose header can be read echoes its correlation id, in the Error
// header and body, whatever stage refused it; only an unreadable header gets an uncorrelated error.
#[tokio::test]
async fn ac_protocol_17_decode_time_refusals_echo_the_correlation_id() {
    use prost::Message as _;
    let mut config = support::config();
    config.session.max_protocol_errors = 100;
    let node = support::start(config).await;
    let (mut client, _) = connect(&node, &token("acme", "alice", 60)).await;
    client.join("lobby").await;
    let header = |id: &str, version: u32| v1::Header {
        protocol_version: version,
        correlation_id: id.to_owned(),
        ..v1::Header::default()
    };
    let body = |header: v1::Header, body: Body| {
        Message::binary(
            v1::Envelope {
                header: Some(header),
                body: Some(body),
            }
            .encode_to_vec(),
        )
    };
    let join = |room: &str| {
        Body::Join(v1::Join {
            room: room.to_owned(),
            ..v1::Join::default()
        })
    };
    let publish = |room: &str, len: usize| {
        Body::Publish(v1::Publish {
            room: room.to_owned(),
            payload: vec![b'x'; len].into(),
            content_type: String::new(),
        })
    };
    let long_room = "r".repeat(300);
    let cases = [
        (
            "wild",
            body(header("wild", 1), join("a.>")),
            v1::ErrorCode::InvalidRoom,
        ),
        (
            "long",
            body(header("long", 1), join(&long_room)),
            v1::ErrorCode::InvalidRoom,
        ),
        (
            "v2",
            body(header("v2", 2), Body::Heartbeat(v1::Heartbeat {})),
            v1::ErrorCode::UnsupportedVersion,
        ),
        (
            "v0",
            body(header("v0", 0), Body::Heartbeat(v1::Heartbeat {})),
            v1::ErrorCode::ProtocolError,
        ),
        (
            "big",
            body(header("big", 1), publish("lobby", 62 * 1024)),
            v1::ErrorCode::PayloadTooLarge,
        ),
        (
            "server-only",
            body(header("server-only", 1), Body::Drain(v1::Drain::default())),
            v1::ErrorCode::ProtocolError,
        ),
        (
            "no-body",
            frame_with_header(&header("no-body", 1), &[]),
            v1::ErrorCode::ProtocolError,
        ),
        // The header is intact; the field after it ends early.
        (
            "cut",
            frame_with_header(&header("cut", 1), &[0x62, 0x10, 0x0a]),
            v1::ErrorCode::ProtocolError,
        ),
        (
            "garbage",
            frame_with_header(&header("garbage", 1), &[0xff, 0xff]),
            v1::ErrorCode::ProtocolError,
        ),
    ];
    for (id, frame, expected) in cases {
        client.send_raw(frame).await;
        let envelope = client
            .expect_envelope(|e| matches!(e.body, Some(Body::Error(_))))
            .await;
        let Some(Body::Error(error)) = envelope.body else {
            unreachable!()
        };
        assert_eq!((id, error.code()), (id, expected));
        assert_eq!(envelope.header.unwrap().correlation_id, id);
        assert_eq!(error.correlation_id, id);
        assert!(!error.message.is_empty());
    }
    // No header can be read: the error is uncorrelated.
    for frame in [Message::text("hi"), Message::binary(vec![0xff, 0xfe, 0x01])] {
        client.send_raw(frame).await;
        let (_, error) = client.expect_error().await;
        assert_eq!(error.correlation_id, "");
    }
    node.shutdown().await;
}

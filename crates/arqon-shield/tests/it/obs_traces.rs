//! One trace across two nodes: a publish on node A over a real nats-server reaches node B, and an
//! OTLP/HTTP receiver in the test gets every span of the catalogue under the client's trace id.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use arqon_proto::outbound::envelope;
use arqon_proto::v1::{self, Header};
use arqon_testkit::NatsServer;
use bytes::Bytes;
use futures_util::SinkExt as _;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, Bus};

/// One span as the receiver decoded it.
#[derive(Clone, Debug)]
struct Received {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    service: String,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// A minimal OTLP/HTTP protobuf receiver on a free port, on its own thread.
fn otlp_receiver() -> (String, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            let body = loop {
                let n = stream.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early");
                raw.extend_from_slice(&buf[..n]);
                let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
                assert!(head.starts_with("post /v1/traces "), "{head}");
                assert!(
                    head.contains("content-type: application/x-protobuf"),
                    "{head}"
                );
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .unwrap()
                    .trim()
                    .parse()
                    .unwrap();
                if raw.len() >= end + 4 + length {
                    break raw[end + 4..end + 4 + length].to_vec();
                }
            };
            let request = ExportTraceServiceRequest::decode(&body[..]).unwrap();
            for resource in request.resource_spans {
                let service = resource
                    .resource
                    .iter()
                    .flat_map(|r| &r.attributes)
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.as_ref())
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                for scope in resource.scope_spans {
                    for span in scope.spans {
                        let _ = tx.send(Received {
                            name: span.name,
                            trace_id: hex(&span.trace_id),
                            span_id: hex(&span.span_id),
                            parent: hex(&span.parent_span_id),
                            service: service.clone(),
                        });
                    }
                }
            }
            stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
        }
    });
    (url, rx)
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

// AC-OBS-2
#[tokio::test]
async fn a_message_crossing_two_nodes_yields_one_trace_with_every_span() {
    let (url, spans) = otlp_receiver();
    let telemetry_config = arqon_config::TelemetryConfig {
        otlp_endpoint: Some(url),
        log_level: "warn".to_owned(),
        ..arqon_config::TelemetryConfig::default()
    };
    let (subscriber, telemetry) =
        arqon_telemetry::subscriber(&telemetry_config, "arqonbus-test", std::io::sink, false)
            .unwrap();
    // The default test runtime is single-threaded: every node task runs under this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run on other threads without a subscriber. With a single
    // registered dispatcher, tracing-core computes a new callsite's interest from the registering
    // thread's default alone, so a callsite first hit on another thread would be cached as
    // disabled here; a second registered dispatcher makes it ask every registered one.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let bus = Bus::Nats(Box::new(NatsServer::start().await.unwrap()));
    let mut config_a = support::config();
    bus.apply(&mut config_a);
    config_a.node.id = "node-a".to_owned();
    let mut config_b = support::config();
    bus.apply(&mut config_b);
    config_b.node.id = "node-b".to_owned();
    let node_a = support::start(config_a).await;
    let node_b = support::start(config_b).await;

    let (mut alice, _) = support::connect(&node_a, &support::token("t1", "alice", 300)).await;
    let (mut bob, _) = support::connect(&node_b, &support::token("t1", "bob", 300)).await;
    alice.join("lobby").await;
    bob.join("lobby").await;

    let header = Header {
        protocol_version: 1,
        correlation_id: "traced".to_owned(),
        traceparent: format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
        tracestate: "vendor=x".to_owned(),
        ..Header::default()
    };
    let publish = v1::Publish {
        room: "lobby".to_owned(),
        payload: Bytes::from_static(b"hello across nodes"),
        content_type: "text/plain".to_owned(),
    };
    let frame = envelope(header, publish).encode_to_vec();
    alice.ws.send(Message::Binary(frame.into())).await.unwrap();
    alice.expect_ack("traced").await;
    let delivered = bob.expect_message(b"hello across nodes").await;
    let delivered_parent = delivered.header.unwrap().traceparent;
    assert!(
        delivered_parent.starts_with(&format!("00-{CLIENT_TRACE}-")),
        "the delivered envelope continues the client's trace: {delivered_parent}"
    );
    assert!(
        !delivered_parent.contains(CLIENT_SPAN),
        "{delivered_parent}"
    );

    telemetry.flush();
    let wanted = [
        "shield.publish",
        "policy.check",
        "spine.publish",
        "spine.receive",
        "shield.fanout",
    ];
    let mut ours: Vec<Received> = Vec::new();
    let deadline = Instant::now() + support::WAIT;
    while !wanted
        .iter()
        .all(|name| ours.iter().any(|s| s.name == *name))
    {
        let left = deadline.saturating_duration_since(Instant::now());
        let span = spans
            .recv_timeout(left.max(Duration::from_millis(1)))
            .unwrap_or_else(|_| panic!("spans missing; got {ours:?}"));
        if span.trace_id == CLIENT_TRACE {
            ours.push(span);
        }
    }
    let by_name = |name: &str| ours.iter().find(|s| s.name == name).unwrap().clone();
    let publish = by_name("shield.publish");
    let policy = by_name("policy.check");
    let spine_publish = by_name("spine.publish");
    let receive = by_name("spine.receive");
    let fanout = by_name("shield.fanout");
    assert_eq!(
        publish.parent, CLIENT_SPAN,
        "shield.publish continues the client"
    );
    assert_eq!(policy.parent, publish.span_id);
    assert_eq!(spine_publish.parent, publish.span_id);
    assert_eq!(
        receive.parent, spine_publish.span_id,
        "node B continues node A"
    );
    assert_eq!(fanout.parent, receive.span_id);
    assert!(
        delivered_parent.contains(&spine_publish.span_id),
        "the envelope names the spine publish"
    );
    assert!(publish.service.contains("arqonbus-test"), "{publish:?}");

    node_a.shutdown().await;
    node_b.shutdown().await;
    telemetry.shutdown();
    drop(bus);
}

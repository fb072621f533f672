//! One trace across two nodes: a publish on node A over a real nats-server reaches node B, and an
//! OTLP/HTTP receiver in the test gets every span of the catalogue under the client's trace id; a
//! join's presence replication carries its trace into the other node's Brain.

use arqon_proto::outbound::envelope;
use arqon_proto::v1::{self, Header};
use arqon_testkit::{NatsServer, OtlpReceiver};
use bytes::Bytes;
use futures_util::SinkExt as _;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, Bus};

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";
/// The client span a governance message comes from (AC-OBS-9).
const GOV_SPAN: &str = "0a0b0c0d0e0f0102";

// AC-OBS-2
#[tokio::test]
#[allow(clippy::too_many_lines)] // one scenario, read top to bottom: two nodes, a publish, every span
async fn a_message_crossing_two_nodes_yields_one_trace_with_every_span() {
    let receiver = OtlpReceiver::start().unwrap();
    let exporting = support::export_to(&receiver);
    let telemetry = &exporting.telemetry;

    let bus = Bus::Nats(Box::new(NatsServer::start_jetstream().await.unwrap()));
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
    let ours = receiver.collect(
        support::WAIT,
        |span| span.trace_id == CLIENT_TRACE,
        |ours| {
            wanted
                .iter()
                .all(|name| ours.iter().any(|s| s.name == *name))
        },
    );
    assert!(
        wanted
            .iter()
            .all(|name| ours.iter().any(|s| s.name == *name)),
        "spans missing; got {ours:?}"
    );
    let by_name = |name: &str| ours.iter().find(|s| s.name == name).unwrap().clone();
    let publish = by_name("shield.publish");
    let policy = by_name("policy.check");
    let spine_publish = by_name("spine.publish");
    let receive = by_name("spine.receive");
    let fanout = by_name("shield.fanout");
    assert_eq!(
        publish.parent_span_id, CLIENT_SPAN,
        "shield.publish continues the client"
    );
    assert_eq!(policy.parent_span_id, publish.span_id);
    assert_eq!(spine_publish.parent_span_id, publish.span_id);
    assert_eq!(
        receive.parent_span_id, spine_publish.span_id,
        "node B continues node A"
    );
    assert_eq!(fanout.parent_span_id, receive.span_id);
    assert!(
        delivered_parent.contains(&spine_publish.span_id),
        "the envelope names the spine publish"
    );
    assert_eq!(publish.service, "arqonbus-test");
    assert_eq!(publish.attributes["tenant"], "t1");
    assert_eq!(fanout.attributes["queued"], "1");

    // AC-OBS-8: the Brain hop. Alice's join on node A (its `presence.update` span) reaches node B's
    // Brain as a replication message, and B's `brain.presence.receive` continues that trace. The
    // join is a fresh one: B replicates the tenant since Bob's join (long done by now), whereas her
    // first join may have been replicated before B subscribed, and B then learns it by an untraced
    // sync. Bob, in the same room on B, sees Alice once B's Brain has applied her join; only then
    // does the test block on the receiver (which would stall this single-threaded runtime).
    alice.join("hall").await;
    bob.join("hall").await;
    bob.expect(|body| match body {
        v1::envelope::Body::PresenceUpdate(update)
            if update.room == "hall" && update.members.iter().any(|m| m.user_id == "alice") =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    let continued = |spans: &[arqon_testkit::ReceivedSpan]| {
        spans.iter().any(|received| {
            received.name == "brain.presence.receive"
                && spans.iter().any(|update| {
                    update.name == "presence.update"
                        && update.span_id == received.parent_span_id
                        && update.trace_id == received.trace_id
                })
        })
    };
    let presence = receiver.collect(
        support::WAIT,
        |span| span.name == "presence.update" || span.name == "brain.presence.receive",
        |spans| continued(spans),
    );
    assert!(
        continued(&presence),
        "a join's trace continues into the other node's Brain; got {presence:?}"
    );

    // AC-OBS-9: a governance message continues the client's trace into the Brain: node A's
    // `shield.governance.forward` (child of the client's span) is the parent of the driver's
    // `brain.governance.receive`, over the spine. Alice may not send telemetry (role user): the
    // refusal that answers her tells the test the Brain has handled it.
    let header = Header {
        protocol_version: 1,
        correlation_id: "gov-traced".to_owned(),
        traceparent: format!("00-{CLIENT_TRACE}-{GOV_SPAN}-01"),
        ..Header::default()
    };
    let telemetry_body = v1::Telemetry {
        timestamp_us: 1,
        node_id: "dp-1".to_owned(),
        metrics: [("latency".to_owned(), 1.0)].into(),
    };
    let frame = envelope(header, telemetry_body).encode_to_vec();
    alice.ws.send(Message::Binary(frame.into())).await.unwrap();
    alice
        .expect_envelope(|e| {
            matches!(e.body, Some(v1::envelope::Body::Error(_)))
                && e.header
                    .as_ref()
                    .is_some_and(|h| h.correlation_id == "gov-traced")
        })
        .await;
    telemetry.flush();
    let hop = |spans: &[arqon_testkit::ReceivedSpan]| {
        spans.iter().any(|received| {
            received.name == "brain.governance.receive"
                && spans.iter().any(|forward| {
                    forward.name == "shield.governance.forward"
                        && forward.parent_span_id == GOV_SPAN
                        && forward.span_id == received.parent_span_id
                        && forward.trace_id == received.trace_id
                })
        })
    };
    let governance = receiver.collect(
        support::WAIT,
        |span| span.trace_id == CLIENT_TRACE,
        |spans| hop(spans),
    );
    assert!(
        hop(&governance),
        "a governance message's trace continues into the Brain; got {governance:?}"
    );

    node_a.shutdown().await;
    node_b.shutdown().await;
    telemetry.shutdown();
    drop(bus);
}

//! Trace sampling on a node that exports to a real OTLP/HTTP receiver: with a ratio of 0, clean
//! publishes build no span, while a client's sampled `traceparent`, an error and a policy block are
//! all traced.

use std::path::PathBuf;
use std::time::Duration;

use arqon_proto::outbound::envelope;
use arqon_proto::v1::{self, Header, envelope::Body};
use arqon_testkit::OtlpReceiver;
use bytes::Bytes;
use futures_util::SinkExt as _;
use prost::Message as _;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, connect, token};

const SAMPLED_TRACE: &str = "5bf92f3577b34da6a3ce929d0e0e4736";
const UNSAMPLED_TRACE: &str = "6bf92f3577b34da6a3ce929d0e0e4736";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../arqon-policy/fixtures/{name}.wat"))
}

/// A publish of `payload` to `room` carrying `traceparent`.
fn traced_publish(
    correlation: &str,
    traceparent: String,
    room: &str,
    payload: &'static [u8],
) -> Vec<u8> {
    let header = Header {
        protocol_version: 1,
        correlation_id: correlation.to_owned(),
        traceparent,
        ..Header::default()
    };
    let publish = v1::Publish {
        room: room.to_owned(),
        payload: Bytes::from_static(payload),
        content_type: String::new(),
    };
    envelope(header, publish).encode_to_vec()
}

// AC-OBS-10, AC-OBS-11
#[tokio::test]
async fn with_ratio_zero_only_sampled_parents_errors_and_blocks_are_traced() {
    let receiver = OtlpReceiver::start().unwrap();
    let exporting = support::export_to(&receiver);
    let mut config = support::config();
    config.telemetry.otlp_endpoint = Some(receiver.url().to_owned());
    config.telemetry.trace_sample_ratio = 0.0;
    config.policy.global = vec![fixture("bad_words")];
    // Room for a loaded test machine (the 2 ms default would time out under CPU contention).
    config.policy.time_budget = arqon_config::Duration::from_millis(250);
    let node = support::start(config).await;
    let (mut alice, _) = connect(&node, &token("t1", "alice", 300)).await;
    let (mut bob, _) = connect(&node, &token("t1", "bob", 300)).await;
    alice.join("lobby").await;
    bob.join("lobby").await;

    for _ in 0..20 {
        let id = alice.publish("lobby", b"clean").await;
        alice.expect_ack(&id).await;
        assert_eq!(&bob.next_message().await[..], b"clean");
    }
    let id = alice.publish("lobby", b"this is malware").await;
    match alice.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::PolicyBlocked),
        other => panic!("{other:?}"),
    }
    let id = alice.publish("elsewhere", b"not joined").await;
    match alice.expect_reply(&id).await {
        Body::Error(e) => assert_eq!(e.code(), v1::ErrorCode::NotInRoom),
        other => panic!("{other:?}"),
    }
    for (correlation, trace, flags) in [
        ("sampled", SAMPLED_TRACE, "01"),
        ("unsampled", UNSAMPLED_TRACE, "00"),
    ] {
        let frame = traced_publish(
            correlation,
            format!("00-{trace}-00f067aa0ba902b7-{flags}"),
            "lobby",
            b"traced",
        );
        alice.ws.send(Message::Binary(frame.into())).await.unwrap();
        alice.expect_ack(correlation).await;
        assert_eq!(&bob.next_message().await[..], b"traced");
    }

    exporting.telemetry.flush();
    let message_path = [
        "shield.publish",
        "policy.check",
        "spine.receive",
        "shield.fanout",
    ];
    // Everything finished is exported by the flush; collect for a moment, then judge all of it.
    let spans = receiver.collect(
        Duration::from_secs(2),
        |span| message_path.contains(&span.name.as_str()),
        |_| false,
    );
    judge(&spans);

    let (_, metrics) = support::http_get(&node, "/metrics").await;
    for line in [
        "arqonbus_shield_traces_sampled{reason=\"parent\"} 1",
        "arqonbus_shield_traces_sampled{reason=\"ratio\"} 0",
        "arqonbus_shield_traces_sampled{reason=\"error\"} 1",
        "arqonbus_shield_traces_sampled{reason=\"policy\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} missing from {metrics}");
    }
    drop((alice, bob));
    node.shutdown().await;
}

/// The exported spans of the test above: the three kept publishes and only the sampled receive.
fn judge(spans: &[arqon_testkit::ReceivedSpan]) {
    let publishes: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "shield.publish")
        .collect();
    assert_eq!(
        publishes.len(),
        3,
        "only three publishes are traced: {publishes:#?}"
    );
    let sampled_as = |reason: &str| {
        publishes
            .iter()
            .find(|s| s.attributes.get("sampled").map(String::as_str) == Some(reason))
            .unwrap_or_else(|| panic!("no publish kept for {reason}: {publishes:#?}"))
    };
    let blocked = sampled_as("policy");
    assert_eq!(blocked.attributes["outcome"], "block");
    assert!(
        spans
            .iter()
            .any(|s| s.name == "policy.check" && s.parent_span_id == blocked.span_id),
        "the block's policy.check is its child: {spans:#?}"
    );
    assert_eq!(sampled_as("error").attributes["outcome"], "NOT_IN_ROOM");
    let parent = publishes
        .iter()
        .find(|s| s.trace_id == SAMPLED_TRACE)
        .expect("the client's sampled trace is kept");
    assert!(!parent.attributes.contains_key("sampled"));
    assert!(
        spans.iter().all(|s| s.trace_id != UNSAMPLED_TRACE),
        "a client's unsampled trace builds no span"
    );
    let receives: Vec<_> = spans.iter().filter(|s| s.name == "spine.receive").collect();
    assert_eq!(
        receives.len(),
        1,
        "only the sampled publish is traced on receive: {receives:#?}"
    );
    assert_eq!(receives[0].trace_id, SAMPLED_TRACE);
}

// AC-OBS-12
#[tokio::test]
async fn the_per_second_budget_caps_what_the_ratio_keeps() {
    let receiver = OtlpReceiver::start().unwrap();
    let _exporting = support::export_to(&receiver);
    let mut config = support::config();
    config.telemetry.otlp_endpoint = Some(receiver.url().to_owned());
    config.telemetry.trace_sample_ratio = 1.0;
    config.telemetry.trace_sample_max_per_sec = 3;
    let node = support::start(config).await;
    let (mut alice, _) = connect(&node, &token("t1", "alice", 300)).await;
    alice.join("lobby").await;
    let started = std::time::Instant::now();
    for _ in 0..10 {
        let id = alice.publish("lobby", b"clean").await;
        alice.expect_ack(&id).await;
    }
    // A burst of three, then one more for each third of a second the ten publishes took.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let refills = (started.elapsed().as_secs_f64() * 3.0).ceil() as u64;
    let (_, metrics) = support::http_get(&node, "/metrics").await;
    let kept: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("arqonbus_shield_traces_sampled{reason=\"ratio\"} "))
        .and_then(|n| n.trim().parse().ok())
        .expect("traces_sampled{ratio} on /metrics");
    assert!(
        (3..=(3 + refills).min(10)).contains(&kept),
        "kept {kept} of 10 with a budget of 3/s over {refills} refills"
    );
    drop(alice);
    node.shutdown().await;
}

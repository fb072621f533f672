//! Structured logs: a flow with a known token and payload is logged as JSON at trace level, and
//! neither secret appears while the publish's lines carry trace id, tenant and request id.

use std::io::Write;
use std::sync::{Arc, Mutex};

use arqon_config::{LogFormat, TelemetryConfig};
use arqon_telemetry::MakeWriter;
use arqon_testkit::NatsServer;

use crate::support::{self, Bus};

/// Collects everything the log layer writes.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> MakeWriter<'w> for Capture {
    type Writer = Self;

    fn make_writer(&'w self) -> Self {
        self.clone()
    }
}

const PAYLOAD: &[u8] = b"payload-canary-5e1f09c3";

// AC-OBS-3
#[tokio::test]
async fn json_logs_carry_ids_and_never_a_token_or_payload() {
    let capture = Capture::default();
    let config = TelemetryConfig {
        log_format: LogFormat::Json,
        // Everything of ours at trace; third-party crates at debug (tungstenite's trace level dumps
        // raw frames of this process's test clients too).
        log_level: "debug,arqon_shield=trace,arqon_spine=trace,arqon_auth=trace,arqon_core=trace"
            .to_owned(),
        ..TelemetryConfig::default()
    };
    let (subscriber, telemetry) =
        arqon_telemetry::subscriber(&config, "arqonbus-test", capture.clone(), false).unwrap();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run on other threads without a subscriber. With a single
    // registered dispatcher, tracing-core computes a new callsite's interest from the registering
    // thread's default alone, so a callsite first hit on another thread would be cached as
    // disabled here; a second registered dispatcher makes it ask every registered one.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();

    let bus = Bus::Nats(Box::new(NatsServer::start_jetstream().await.unwrap()));
    let mut node_config = support::config();
    bus.apply(&mut node_config);
    let node = support::start(node_config).await;
    let alice_token = support::token("acme", "alice", 300);
    let bob_token = support::token("acme", "bob", 300);
    let (mut alice, _) = support::connect(&node, &alice_token).await;
    let (mut bob, _) = support::connect(&node, &bob_token).await;
    alice.join("ops").await;
    bob.join("ops").await;
    let correlation = alice.publish("ops", PAYLOAD).await;
    alice.expect_ack(&correlation).await;
    bob.expect_message(PAYLOAD).await;
    // A refused token: expired, so it parses and its claims are read before it is refused.
    let expired = support::expired_token("acme", "mallory");
    let refused =
        support::connect_with(&node, Some(("authorization", format!("Bearer {expired}"))))
            .await
            .err()
            .unwrap();
    assert_eq!(refused.status, 401);
    node.shutdown().await;
    telemetry.shutdown();
    drop(bus);

    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(lines.len() > 10, "the flow logged: {text}");
    let payload = std::str::from_utf8(PAYLOAD).unwrap();
    for secret in [alice_token.as_str(), bob_token.as_str(), expired.as_str()] {
        // The signature part alone is unique to the token.
        let signature = secret.rsplit('.').next().unwrap();
        assert!(!text.contains(signature), "a token leaked into the logs");
    }
    assert!(!text.contains(payload), "the payload leaked into the logs");

    let in_publish = lines
        .iter()
        .filter(|line| {
            line["spans"]
                .as_array()
                .is_some_and(|spans| spans.iter().any(|s| s["name"] == "shield.publish"))
        })
        .collect::<Vec<_>>();
    assert!(
        !in_publish.is_empty(),
        "no line inside shield.publish: {text}"
    );
    for line in in_publish {
        let publish = line["spans"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "shield.publish")
            .unwrap();
        let trace_id = publish["trace_id"].as_str().unwrap();
        assert_eq!(trace_id.len(), 32, "{line}");
        assert_eq!(publish["tenant"], "acme", "{line}");
        assert!(
            publish["request"].as_str().unwrap().ends_with("-r2"),
            "{line}"
        );
    }
}

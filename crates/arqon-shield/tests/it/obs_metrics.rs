//! The metric catalogue on a live node's `/metrics` after a flow, and every metric the Grafana
//! dashboard in `deploy/` queries.

use std::collections::BTreeSet;

use tokio_tungstenite::tungstenite::Message;

use crate::support;

/// `specs/observability.md`: every catalogue metric with its Prometheus type.
const CATALOGUE: &[(&str, &str)] = &[
    ("arqonbus_shield_connects", "counter"),
    ("arqonbus_shield_connections_open", "gauge"),
    ("arqonbus_shield_connections_accepted", "counter"),
    ("arqonbus_shield_auth_failures", "counter"),
    ("arqonbus_shield_admission_rejections", "counter"),
    ("arqonbus_shield_handshake_seconds", "histogram"),
    ("arqonbus_shield_frames_in", "counter"),
    ("arqonbus_shield_published", "counter"),
    ("arqonbus_shield_delivered", "counter"),
    ("arqonbus_shield_deliver_latency_seconds", "histogram"),
    ("arqonbus_shield_dropped_slow", "counter"),
    ("arqonbus_shield_batch_frames", "counter"),
    ("arqonbus_shield_batched_envelopes", "counter"),
    ("arqonbus_shield_protocol_errors", "counter"),
    ("arqonbus_shield_errors_sent", "counter"),
    ("arqonbus_shield_sessions_closed", "counter"),
    ("arqonbus_shield_publish_failures", "counter"),
    ("arqonbus_shield_policy_blocked", "counter"),
    ("arqonbus_shield_rooms_subscribed", "gauge"),
    ("arqonbus_shield_refreshes", "counter"),
    ("arqonbus_policy_verdicts", "counter"),
    ("arqonbus_policy_duration_seconds", "histogram"),
    ("arqonbus_presence_members", "gauge"),
    ("arqonbus_spine_errors", "counter"),
];

/// The value of the sample line `name` (exact, labels included).
fn sample<'t>(text: &'t str, name: &str) -> &'t str {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{name} missing from:\n{text}"))
}

/// Runs a flow on a fresh node (refused token, two clients, one publish) and returns `/metrics`.
async fn metrics_after_a_flow() -> String {
    let node = support::start(support::config()).await;
    let refused = support::connect_with(&node, Some(("authorization", "Bearer nope".to_owned())))
        .await
        .err()
        .unwrap();
    assert_eq!(refused.status, 401);
    let (mut alice, _) = support::connect(&node, &support::token("t1", "alice", 300)).await;
    let (mut bob, _) = support::connect(&node, &support::token("t1", "bob", 300)).await;
    alice.join("lobby").await;
    bob.join("lobby").await;
    let correlation = alice.publish("lobby", b"m1").await;
    alice.expect_ack(&correlation).await;
    bob.expect_message(b"m1").await;
    alice.send_raw(Message::Text("not protobuf".into())).await;
    alice.expect_error().await;
    let (status, text) = support::http_get(&node, "/metrics").await;
    assert_eq!(status, 200);
    node.shutdown().await;
    text
}

// AC-OBS-1
#[tokio::test]
async fn every_catalogue_metric_is_on_metrics_after_a_flow() {
    let text = metrics_after_a_flow().await;
    for (name, kind) in CATALOGUE {
        assert!(
            text.contains(&format!("# TYPE {name} {kind}\n")),
            "{name} ({kind}) missing from:\n{text}"
        );
    }
    assert_eq!(
        sample(
            &text,
            "arqonbus_shield_connects{outcome=\"accepted\",reason=\"ok\"}"
        ),
        "2"
    );
    assert!(text.contains("arqonbus_shield_connects{outcome=\"unauthorized\","));
    assert_eq!(
        sample(&text, "arqonbus_shield_handshake_seconds_count"),
        "2"
    );
    assert_eq!(
        sample(&text, "arqonbus_shield_deliver_latency_seconds_count"),
        "1"
    );
    assert_eq!(sample(&text, "arqonbus_policy_duration_seconds_count"), "1");
    assert_eq!(
        sample(&text, "arqonbus_policy_verdicts{verdict=\"allow\"}"),
        "1"
    );
    assert_eq!(sample(&text, "arqonbus_presence_members"), "2");
    assert_eq!(sample(&text, "arqonbus_shield_connections_open"), "2");
    assert!(
        sample(&text, "arqonbus_shield_handshake_seconds_sum")
            .parse::<f64>()
            .unwrap()
            > 0.0
    );
}

/// Every `arqonbus_*` name in the dashboard's queries.
fn dashboard_metrics() -> BTreeSet<String> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/dashboards/arqonbus-overview.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(dashboard["title"], "ArqonBus Overview");
    let mut names = BTreeSet::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(at) = rest.find("arqonbus_") {
                let tail = &rest[at..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(tail.len());
                names.insert(tail[..end].to_owned());
                rest = &tail[end..];
            }
        }
    }
    names
}

// AC-OBS-4
#[tokio::test]
async fn every_metric_the_dashboard_queries_exists_on_a_live_node() {
    let names = dashboard_metrics();
    assert!(names.len() >= 8, "the dashboard queries {names:?}");
    let text = metrics_after_a_flow().await;
    for name in &names {
        let exists = text.lines().any(|line| {
            line.strip_prefix(name.as_str())
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        });
        assert!(exists, "the dashboard queries {name}, absent from:\n{text}");
    }
}

//! An old client against today's node (specs/aces.md, compat): a client built from the previous
//! released wire contract — the `buf breaking` baseline, `golden/proto-baseline.binpb` — encodes its
//! frames from those descriptors alone (prost-reflect, no generated code of today) and talks to a
//! real node over a real WebSocket; and every golden vector of today decodes with the old
//! descriptors (new fields are unknown fields, which an old decoder skips).

use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, Value};
use tokio_tungstenite::tungstenite::Message;

use crate::support::{self, connect, token};

const BASELINE: &[u8] = include_bytes!("../../../../golden/proto-baseline.binpb");

fn envelope_descriptor() -> MessageDescriptor {
    DescriptorPool::decode(BASELINE)
        .unwrap()
        .get_message_by_name("arqon.v1.Envelope")
        .unwrap()
}

/// An envelope as the old client builds it: header (version 1, `correlation`) and one body.
fn old_frame(
    envelope: &MessageDescriptor,
    correlation: &str,
    body: &str,
    fields: &[(&str, Value)],
) -> Message {
    let mut message = DynamicMessage::new(envelope.clone());
    let header_field = envelope.get_field_by_name("header").unwrap();
    let mut header = DynamicMessage::new(header_field.kind().as_message().unwrap().clone());
    header.set_field_by_name("protocol_version", Value::U32(1));
    header.set_field_by_name("correlation_id", Value::String(correlation.to_owned()));
    message.set_field(&header_field, Value::Message(header));
    let body_field = envelope.get_field_by_name(body).unwrap();
    let mut inner = DynamicMessage::new(body_field.kind().as_message().unwrap().clone());
    for (name, value) in fields {
        inner.set_field_by_name(name, value.clone());
    }
    message.set_field(&body_field, Value::Message(inner));
    Message::binary(message.encode_to_vec())
}

fn old_decode(envelope: &MessageDescriptor, bytes: &[u8]) -> DynamicMessage {
    DynamicMessage::decode(envelope.clone(), bytes).unwrap()
}

fn field(message: &DynamicMessage, path: &[&str]) -> Value {
    let mut current = message.clone();
    for (i, name) in path.iter().enumerate() {
        let value = current.get_field_by_name(name).unwrap().into_owned();
        if i + 1 == path.len() {
            return value;
        }
        current = value.as_message().unwrap().clone();
    }
    unreachable!()
}

// AC-ACES-15: a client of the previous wire contract joins, publishes and receives on today's node.
#[tokio::test]
async fn ac_aces_13_an_old_client_talks_to_todays_node() {
    let envelope = envelope_descriptor();
    let node = support::start(support::config()).await;
    let (mut old, _) = connect(&node, &token("acme", "old", 60)).await;
    let (mut today, _) = connect(&node, &token("acme", "today", 60)).await;
    today.join("lobby").await;

    let room = Value::String("lobby".to_owned());
    old.send_raw(old_frame(
        &envelope,
        "old-1",
        "join",
        &[("room", room.clone())],
    ))
    .await;
    old.expect_ack("old-1").await;
    let publish = [
        ("room", room),
        (
            "payload",
            Value::Bytes(b"from the old contract".to_vec().into()),
        ),
        ("content_type", Value::String("text/plain".to_owned())),
    ];
    old.send_raw(old_frame(&envelope, "old-2", "publish", &publish))
        .await;
    old.expect_ack("old-2").await;
    // Today's client gets it; the old client gets its own copy and reads it with the old contract.
    today.expect_message(b"from the old contract").await;
    let delivered = old.expect_message(b"from the old contract").await;
    let decoded = old_decode(&envelope, &delivered.encode_to_vec());
    assert_eq!(
        field(&decoded, &["message", "room"]),
        Value::String("lobby".to_owned())
    );
    assert_eq!(
        field(&decoded, &["header", "sender_user_id"]),
        Value::String("old".to_owned())
    );
    node.shutdown().await;
}

// AC-ACES-15: every golden vector of today decodes with the previous contract's descriptors.
#[test]
fn ac_aces_13_todays_golden_vectors_decode_with_the_old_contract() {
    let envelope = envelope_descriptor();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../golden/vectors");
    let mut decoded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "snap") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let json = text.splitn(3, "---").nth(2).unwrap();
        let vector: serde_json::Value = serde_json::from_str(json).unwrap();
        let bytes = hex::decode(vector["hex"].as_str().unwrap()).unwrap();
        let old = DynamicMessage::decode(envelope.clone(), bytes.as_slice())
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if vector["body"] == "batch" {
            // Newer than the old contract and sent only to a client that offered
            // `arqon.v1.batch`: it decodes, to nothing the old contract knows.
            assert_eq!(old.fields().count(), 0, "{}", path.display());
        } else {
            assert!(old.has_field_by_name("header"), "{}", path.display());
        }
        decoded += 1;
    }
    assert!(decoded >= 30, "only {decoded} vectors");
}

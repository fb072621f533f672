//! Golden vectors: one canonical envelope per message type, checked byte for byte both ways.
//!
//! Each vector is an insta snapshot in `golden/vectors/<name>.snap`: a `---` header, then a JSON
//! document `{ name, message_type, body, hex, json }` (`json` is proto3 canonical JSON). The test
//! (1) builds the envelope, encodes it and compares the whole document with the committed file,
//! so drift fails under `CI=true`; (2) reads the committed file back, decodes its hex and compares
//! with the built envelope, then re-encodes and compares with the hex; (3) parses its JSON and
//! compares with the built envelope. The Python SDK reads the same files.

use std::collections::BTreeSet;
use std::path::PathBuf;

use arqon_proto::v1::{self, Envelope, Header, enforce::Action, envelope::Body};
use arqon_proto::{FILE_DESCRIPTOR_SET, body_name, encode_envelope};
use bytes::Bytes;
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, MessageDescriptor, ReflectMessage, SerializeOptions, Value,
};

fn header(message_id: &str) -> Header {
    Header {
        protocol_version: 1,
        message_id: message_id.into(),
        correlation_id: "c-0001".into(),
        twist_id: "twist-0001".into(),
        timestamp_us: 1_767_225_600_000_000,
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: "arqon=1".into(),
        tenant_id: "acme".into(),
        sender_user_id: "alice".into(),
        sender_session_id: "s-0001".into(),
    }
}

fn member(user: &str, session: &str) -> v1::Member {
    v1::Member {
        user_id: user.into(),
        session_id: session.into(),
        node_id: "node-a".into(),
        joined_at_us: 1_767_225_599_000_000,
        metadata: [("status".to_owned(), "online".to_owned())].into(),
    }
}

fn enforce(action: Action) -> v1::Enforce {
    v1::Enforce {
        reason: "operator override".into(),
        action: Some(action),
    }
}

/// Every canonical vector: a name and the envelope it encodes. Map values are never empty or
/// zero, because encoders disagree on whether to write default values inside map entries.
#[allow(clippy::too_many_lines, reason = "a data table, one entry per vector")]
fn vectors() -> Vec<(&'static str, Envelope)> {
    let bodies: Vec<(&'static str, Body)> = vec![
            (
                "join",
                v1::Join {
                    room: "general".into(),
                    metadata: [
                        ("status".to_owned(), "online".to_owned()),
                        ("device".to_owned(), "phone".to_owned()),
                    ]
                    .into(),
                    since: None,
                }
                .into(),
            ),
            (
                "leave",
                v1::Leave {
                    room: "general".into(),
                }
                .into(),
            ),
            (
                "publish",
                v1::Publish {
                    room: "general".into(),
                    payload: Bytes::from_static(b"HELLO"),
                    content_type: "text/plain".into(),
                }
                .into(),
            ),
            ("heartbeat", v1::Heartbeat {}.into()),
            ("ping", v1::Ping { nonce: 42 }.into()),
            ("pong", v1::Pong { nonce: 42 }.into()),
            (
                "refresh",
                v1::Refresh {
                    token: "eyJhbGciOiJSUzI1NiJ9.e30.c2ln".into(),
                }
                .into(),
            ),
            (
                "presence_request",
                v1::PresenceRequest {
                    room: "general".into(),
                    page_size: 100,
                    page_token: "p-2".into(),
                }
                .into(),
            ),
            (
                "ack",
                v1::Ack {
                    acked_message_id: "m-0001".into(),
                }
                .into(),
            ),
            (
                "welcome",
                v1::Welcome {
                    session_id: "s-0001".into(),
                    server_version: "0.1.0".into(),
                    heartbeat_interval_ms: 15_000,
                    limits: Some(v1::Limits {
                        max_frame_bytes: 65_536,
                        max_payload_bytes: 61_440,
                        max_rooms: 64,
                        publish_rate_per_sec: 100,
                        publish_burst: 200,
                    }),
                    tenant_id: "acme".into(),
                    user_id: "alice".into(),
                    node_id: "node-a".into(),
                }
                .into(),
            ),
            (
                "message",
                v1::Message {
                    room: "general".into(),
                    payload: Bytes::from_static(&[0x00, 0x01, 0xfe, 0xff]),
                    content_type: "application/octet-stream".into(),
                    ..v1::Message::default()
                }
                .into(),
            ),
            (
                "message_positioned",
                v1::Message {
                    room: "general".into(),
                    payload: Bytes::from_static(b"hello"),
                    content_type: "text/plain".into(),
                    offset: 4_294_967_301,
                    epoch: "j17f2a9c3e5b1d000".into(),
                }
                .into(),
            ),
            (
                "join_since",
                v1::Join {
                    room: "general".into(),
                    metadata: [("status".to_owned(), "online".to_owned())].into(),
                    since: Some(v1::Position {
                        offset: 1041,
                        epoch: "j17f2a9c3e5b1d000".into(),
                    }),
                }
                .into(),
            ),
            (
                "recovery",
                v1::Recovery {
                    room: "general".into(),
                    recovered: true,
                    truncated: false,
                    count: 3,
                    position: Some(v1::Position {
                        offset: 1057,
                        epoch: "j17f2a9c3e5b1d000".into(),
                    }),
                }
                .into(),
            ),
            (
                "history_request_last",
                v1::HistoryRequest {
                    room: "general".into(),
                    last: 20,
                    since: None,
                }
                .into(),
            ),
            (
                "history_request_since",
                v1::HistoryRequest {
                    room: "general".into(),
                    last: 0,
                    since: Some(v1::Position {
                        offset: 1041,
                        epoch: "j17f2a9c3e5b1d000".into(),
                    }),
                }
                .into(),
            ),
            (
                "history_page",
                v1::HistoryPage {
                    room: "general".into(),
                    messages: vec![Envelope {
                        header: Some(header("m-0042")),
                        body: Some(Body::Message(v1::Message {
                            room: "general".into(),
                            payload: Bytes::from_static(b"hi"),
                            content_type: "text/plain".into(),
                            offset: 1042,
                            epoch: "j17f2a9c3e5b1d000".into(),
                        })),
                    }],
                    position: Some(v1::Position {
                        offset: 1057,
                        epoch: "j17f2a9c3e5b1d000".into(),
                    }),
                    truncated: true,
                }
                .into(),
            ),
            (
                "presence_update_snapshot",
                v1::PresenceUpdate {
                    room: "general".into(),
                    members: vec![member("alice", "s-0001"), member("bob", "s-0002")],
                    kind: v1::PresenceUpdateKind::Snapshot.into(),
                    next_page_token: "p-2".into(),
                }
                .into(),
            ),
            (
                "presence_update_join",
                v1::PresenceUpdate {
                    room: "general".into(),
                    members: vec![member("carol", "s-0003")],
                    kind: v1::PresenceUpdateKind::Join.into(),
                    next_page_token: String::new(),
                }
                .into(),
            ),
            (
                "presence_leave",
                v1::PresenceLeave {
                    room: "general".into(),
                    user_id: "bob".into(),
                    session_id: "s-0002".into(),
                    reason: v1::LeaveReason::HeartbeatTimeout.into(),
                }
                .into(),
            ),
            (
                "drain",
                v1::Drain {
                    reason: "node shutting down".into(),
                    reconnect_after_ms: 1_500,
                }
                .into(),
            ),
            (
                "error",
                v1::Error {
                    code: v1::ErrorCode::RateLimited.into(),
                    message: "publish rate exceeded".into(),
                    correlation_id: "c-0001".into(),
                    retry_after_ms: 250,
                }
                .into(),
            ),
            (
                "telemetry",
                v1::Telemetry {
                    timestamp_us: 1_767_225_600_000_000,
                    node_id: "node-a".into(),
                    metrics: [
                        ("latency_p99".to_owned(), 12.5),
                        ("throughput".to_owned(), 1_000.0),
                    ]
                    .into(),
                }
                .into(),
            ),
            (
                "proposal",
                v1::Proposal {
                    id: "prop_001".into(),
                    timestamp_us: 1_767_225_600_000_000,
                    variant_id: Some(42),
                    params: [("batch_size".to_owned(), 64.0)].into(),
                    reason: "Latency regression detected".into(),
                    confidence: 0.92,
                }
                .into(),
            ),
            (
                "alert",
                v1::Alert {
                    timestamp_us: 1_767_225_600_000_000,
                    severity: v1::AlertSeverity::Critical.into(),
                    message: "error rate above 5%".into(),
                    context: [("room".to_owned(), "general".to_owned())].into(),
                }
                .into(),
            ),
            (
                "approval",
                v1::Approval {
                    proposal_id: "prop_001".into(),
                    proposal_digest:
                        "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                            .into(),
                    rollout: Some(v1::RolloutConfig {
                        initial_percent: 5.0,
                        increment_per_minute: 2.5,
                        max_percent: 50.0,
                    }),
                }
                .into(),
            ),
            (
                "rejection",
                v1::Rejection {
                    proposal_id: "prop_002".into(),
                    reason: "confidence below threshold".into(),
                }
                .into(),
            ),
            (
                "enforce_set_variant",
                enforce(Action::SetVariant(v1::SetVariant { variant_id: 7 })).into(),
            ),
            (
                "enforce_set_params",
                enforce(Action::SetParams(v1::SetParams {
                    params: [("temperature".to_owned(), 0.5)].into(),
                }))
                .into(),
            ),
            (
                "enforce_emergency_stop",
                enforce(Action::EmergencyStop(v1::EmergencyStop {})).into(),
            ),
            (
                "enforce_pause_adaptation",
                enforce(Action::PauseAdaptation(v1::PauseAdaptation {})).into(),
            ),
            (
                "enforce_resume_adaptation",
                enforce(Action::ResumeAdaptation(v1::ResumeAdaptation {})).into(),
            ),
            (
                "catalog_update",
                v1::CatalogUpdate {
                    version: 3,
                    source_uri: "https://catalog.example.com/v3.json".into(),
                }
                .into(),
            ),
            // Refusals raised while the frame is decoded answer their request too (AC-PROTOCOL-17).
            (
                "error_invalid_room",
                v1::Error {
                    code: v1::ErrorCode::InvalidRoom.into(),
                    message: "invalid room name: room holds a forbidden character at byte 1"
                        .into(),
                    correlation_id: "c-0001".into(),
                    retry_after_ms: 0,
                }
                .into(),
            ),
            (
                "error_unsupported_version",
                v1::Error {
                    code: v1::ErrorCode::UnsupportedVersion.into(),
                    message: "protocol version 2 is not supported (this server speaks 1)".into(),
                    correlation_id: "c-0001".into(),
                    retry_after_ms: 0,
                }
                .into(),
            ),
            // A text frame's header is never read: its error is the one uncorrelated reply.
            (
                "error_text_frame",
                v1::Error {
                    code: v1::ErrorCode::TextFrame.into(),
                    message: "text frames are not accepted; send binary protobuf envelopes".into(),
                    correlation_id: String::new(),
                    retry_after_ms: 0,
                }
                .into(),
            ),
            // Several envelopes in one frame, as sent to a client of `arqon.v1.batch`
            // (AC-PROTOCOL-18): a delivered message and an ack; the batch itself has no header.
            (
                "batch",
                v1::Batch {
                    envelopes: vec![
                        Envelope {
                            header: Some(header("m-0101")),
                            body: Some(Body::Message(v1::Message {
                                room: "general".into(),
                                payload: Bytes::from_static(b"hi"),
                                content_type: "text/plain".into(),
                                offset: 1042,
                                epoch: "j17f2a9c3e5b1d000".into(),
                            })),
                        },
                        Envelope {
                            header: Some(header("m-0102")),
                            body: Some(Body::Ack(v1::Ack {
                                acked_message_id: "m-0099".into(),
                            })),
                        },
                    ],
                }
                .into(),
            ),
        ];
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, (name, body))| {
            let mut header = header(&format!("m-{:04}", i + 1));
            if name == "error_text_frame" {
                header.correlation_id.clear();
            }
            let envelope = Envelope {
                header: (name != "batch").then_some(header),
                body: Some(body),
            };
            (name, envelope)
        })
        .collect()
}

fn pool() -> DescriptorPool {
    DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap()
}

fn envelope_descriptor() -> MessageDescriptor {
    pool().get_message_by_name("arqon.v1.Envelope").unwrap()
}

/// The language-neutral document of one vector.
fn document(name: &str, envelope: &Envelope) -> serde_json::Value {
    let bytes = encode_envelope(envelope);
    let dynamic = DynamicMessage::decode(envelope_descriptor(), bytes.clone()).unwrap();
    let json = dynamic
        .serialize_with_options(serde_json::value::Serializer, &SerializeOptions::new())
        .unwrap();
    serde_json::json!({
        "name": name,
        "message_type": "arqon.v1.Envelope",
        "body": body_name(envelope.body.as_ref().unwrap()),
        "hex": hex::encode(&bytes),
        "json": json,
    })
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../golden/vectors")
}

/// The JSON document inside a committed snapshot file.
fn committed(name: &str) -> serde_json::Value {
    let path = vectors_dir().join(format!("{name}.snap"));
    let text = std::fs::read_to_string(&path).unwrap();
    let json = text.splitn(3, "---\n").nth(2).unwrap();
    serde_json::from_str(json).unwrap()
}

/// Decodes `bytes`, compares with `built`, re-encodes and compares with `bytes`.
fn verify(bytes: &[u8], built: &Envelope) -> Result<(), String> {
    let decoded = Envelope::decode(bytes).map_err(|e| format!("decode: {e}"))?;
    if &decoded != built {
        return Err("decoded envelope differs from the built one".into());
    }
    if encode_envelope(&decoded) != bytes {
        return Err("re-encoding differs from the vector".into());
    }
    Ok(())
}

// AC-PROTOCOL-3
#[test]
fn golden_vectors_match_both_ways() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(vectors_dir());
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        for (name, envelope) in vectors() {
            insta::assert_json_snapshot!(name, document(name, &envelope));
        }
    });
    for (name, envelope) in vectors() {
        let doc = committed(name);
        let bytes = hex::decode(doc["hex"].as_str().unwrap()).unwrap();
        verify(&bytes, &envelope).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The canonical JSON rendering parses back to the same envelope.
        let from_json = DynamicMessage::deserialize(envelope_descriptor(), &doc["json"])
            .unwrap()
            .encode_to_vec();
        assert_eq!(
            Envelope::decode(&from_json[..]).unwrap(),
            envelope,
            "{name}"
        );
    }
}

// AC-PROTOCOL-3
#[test]
fn golden_vectors_cover_every_body_action_and_message_type() {
    let descriptor = envelope_descriptor();
    let mut wanted = BTreeSet::new();
    for oneof in descriptor.oneofs() {
        wanted.extend(oneof.fields().map(|f| format!("body:{}", f.name())));
    }
    let enforce = pool().get_message_by_name("arqon.v1.Enforce").unwrap();
    for oneof in enforce.oneofs() {
        wanted.extend(oneof.fields().map(|f| format!("action:{}", f.name())));
    }
    wanted.extend(
        pool()
            .all_messages()
            .filter(|m| !m.is_map_entry())
            .map(|m| format!("type:{}", m.full_name())),
    );

    let mut seen = BTreeSet::new();
    for (_, envelope) in vectors() {
        if let Some(Body::Enforce(v1::Enforce {
            action: Some(action),
            ..
        })) = &envelope.body
        {
            let dynamic = DynamicMessage::decode(
                enforce.clone(),
                v1::Enforce {
                    reason: String::new(),
                    action: Some(action.clone()),
                }
                .encode_to_vec()
                .as_slice(),
            )
            .unwrap();
            seen.extend(
                dynamic
                    .fields()
                    .map(|(f, _)| format!("action:{}", f.name())),
            );
        }
        seen.insert(format!(
            "body:{}",
            body_name(envelope.body.as_ref().unwrap())
        ));
        let dynamic =
            DynamicMessage::decode(descriptor.clone(), encode_envelope(&envelope)).unwrap();
        collect_types(&dynamic, &mut seen);
    }
    let missing: Vec<_> = wanted.difference(&seen).collect();
    assert!(missing.is_empty(), "no golden vector for {missing:?}");
}

fn collect_types(message: &DynamicMessage, seen: &mut BTreeSet<String>) {
    seen.insert(format!("type:{}", message.descriptor().full_name()));
    for (_, value) in message.fields() {
        let nested: Vec<&Value> = match value {
            Value::List(items) => items.iter().collect(),
            other => vec![other],
        };
        for value in nested {
            if let Value::Message(inner) = value {
                collect_types(inner, seen);
            }
        }
    }
}

// AC-PROTOCOL-4
#[test]
fn flipping_any_bit_of_any_vector_is_detected() {
    for (name, envelope) in vectors() {
        let bytes = hex::decode(committed(name)["hex"].as_str().unwrap()).unwrap();
        assert_eq!(verify(&bytes, &envelope), Ok(()), "{name}");
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(
                verify(&flipped, &envelope).is_err(),
                "{name}: flipping bit {bit} went unnoticed"
            );
        }
    }
}

//! Properties of the wire contract: the decoder is total, and valid envelopes round-trip.
//!
//! Fixed seed, checked-in regressions (`tests/it/proptest-regressions/prop_envelope.txt`).

use std::collections::BTreeMap;

use arqon_proto::v1::{self, Envelope, Header, enforce::Action, envelope::Body};
use arqon_proto::{
    Frame, FrameLimits, ProtocolError, decode_client_frame, decode_envelope, encode_envelope,
    refused_header,
};
use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence, RngSeed};
use prost::Message as _;

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(0x00A1_2C0B_0500_0001),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/proptest-regressions/prop_envelope.txt"
        )))),
        ..Config::default()
    }
}

fn text() -> impl Strategy<Value = String> {
    "[ -~]{0,24}"
}

fn number() -> impl Strategy<Value = f64> {
    -1.0e12..1.0e12f64
}

fn string_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map(text(), text(), 0..4)
}

fn number_map() -> impl Strategy<Value = BTreeMap<String, f64>> {
    prop::collection::btree_map(text(), number(), 0..4)
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from)
}

fn header() -> impl Strategy<Value = Header> {
    (
        (text(), text(), text(), any::<u64>(), text()),
        (text(), text(), text(), text()),
    )
        .prop_map(
            |(
                (message_id, correlation_id, twist_id, timestamp_us, traceparent),
                (tracestate, tenant_id, sender_user_id, sender_session_id),
            )| Header {
                protocol_version: 1,
                message_id,
                correlation_id,
                twist_id,
                timestamp_us,
                traceparent,
                tracestate,
                tenant_id,
                sender_user_id,
                sender_session_id,
            },
        )
}

fn member() -> impl Strategy<Value = v1::Member> {
    (text(), text(), text(), any::<u64>(), string_map()).prop_map(
        |(user_id, session_id, node_id, joined_at_us, metadata)| v1::Member {
            user_id,
            session_id,
            node_id,
            joined_at_us,
            metadata,
        },
    )
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        any::<u64>().prop_map(|variant_id| Action::SetVariant(v1::SetVariant { variant_id })),
        number_map().prop_map(|params| Action::SetParams(v1::SetParams { params })),
        Just(Action::EmergencyStop(v1::EmergencyStop {})),
        Just(Action::PauseAdaptation(v1::PauseAdaptation {})),
        Just(Action::ResumeAdaptation(v1::ResumeAdaptation {})),
    ]
}

fn position() -> impl Strategy<Value = Option<v1::Position>> {
    proptest::option::of(
        (any::<u64>(), text()).prop_map(|(offset, epoch)| v1::Position { offset, epoch }),
    )
}

fn history_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (text(), any::<u32>(), position()).prop_map(|(room, last, since)| v1::HistoryRequest {
            room,
            last,
            since
        }
        .into()),
        (
            text(),
            any::<bool>(),
            any::<bool>(),
            any::<u32>(),
            position()
        )
            .prop_map(
                |(room, recovered, truncated, count, position)| v1::Recovery {
                    room,
                    recovered,
                    truncated,
                    count,
                    position,
                }
                .into()
            ),
        (text(), any::<bool>(), position()).prop_map(|(room, truncated, position)| {
            v1::HistoryPage {
                room,
                messages: Vec::new(),
                position,
                truncated,
            }
            .into()
        }),
    ]
}

#[allow(clippy::too_many_lines, reason = "a data table, one strategy per body")]
fn session_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (text(), string_map(), position()).prop_map(|(room, metadata, since)| v1::Join {
            room,
            metadata,
            since
        }
        .into()),
        history_body(),
        text().prop_map(|room| v1::Leave { room }.into()),
        (text(), payload(), text()).prop_map(|(room, payload, content_type)| v1::Publish {
            room,
            payload,
            content_type
        }
        .into()),
        Just(v1::Heartbeat {}.into()),
        any::<u64>().prop_map(|nonce| v1::Ping { nonce }.into()),
        any::<u64>().prop_map(|nonce| v1::Pong { nonce }.into()),
        text().prop_map(|token| v1::Refresh { token }.into()),
        (text(), any::<u32>(), text()).prop_map(|(room, page_size, page_token)| {
            v1::PresenceRequest {
                room,
                page_size,
                page_token,
            }
            .into()
        }),
        text().prop_map(|acked_message_id| v1::Ack { acked_message_id }.into()),
        (
            text(),
            text(),
            any::<u32>(),
            prop::array::uniform5(any::<u32>()),
            text()
        )
            .prop_map(
                |(session_id, server_version, heartbeat_interval_ms, l, node_id)| v1::Welcome {
                    session_id,
                    server_version,
                    heartbeat_interval_ms,
                    limits: Some(v1::Limits {
                        max_frame_bytes: l[0],
                        max_payload_bytes: l[1],
                        max_rooms: l[2],
                        publish_rate_per_sec: l[3],
                        publish_burst: l[4],
                    }),
                    tenant_id: "acme".into(),
                    user_id: "alice".into(),
                    node_id,
                }
                .into()
            ),
        (text(), payload(), text(), any::<u64>(), text()).prop_map(
            |(room, payload, content_type, offset, epoch)| v1::Message {
                room,
                payload,
                content_type,
                offset,
                epoch,
            }
            .into()
        ),
        (
            text(),
            prop::collection::vec(member(), 0..3),
            0..3i32,
            text()
        )
            .prop_map(
                |(room, members, kind, next_page_token)| v1::PresenceUpdate {
                    room,
                    members,
                    kind,
                    next_page_token,
                }
                .into()
            ),
        (text(), text(), text(), 0..6i32).prop_map(|(room, user_id, session_id, reason)| {
            v1::PresenceLeave {
                room,
                user_id,
                session_id,
                reason,
            }
            .into()
        }),
        (text(), any::<u32>()).prop_map(|(reason, reconnect_after_ms)| v1::Drain {
            reason,
            reconnect_after_ms
        }
        .into()),
        (0..27i32, text(), text(), any::<u32>()).prop_map(
            |(code, message, correlation_id, retry_after_ms)| v1::Error {
                code,
                message,
                correlation_id,
                retry_after_ms,
            }
            .into()
        ),
    ]
}

fn governance_body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (any::<u64>(), text(), number_map()).prop_map(|(timestamp_us, node_id, metrics)| {
            v1::Telemetry {
                timestamp_us,
                node_id,
                metrics,
            }
            .into()
        }),
        (
            text(),
            any::<u64>(),
            any::<Option<u64>>(),
            number_map(),
            text(),
            0.0..=1.0f64
        )
            .prop_map(
                |(id, timestamp_us, variant_id, params, reason, confidence)| v1::Proposal {
                    id,
                    timestamp_us,
                    variant_id,
                    params,
                    reason,
                    confidence,
                }
                .into()
            ),
        (any::<u64>(), 0..5i32, text(), string_map()).prop_map(
            |(timestamp_us, severity, message, context)| v1::Alert {
                timestamp_us,
                severity,
                message,
                context,
            }
            .into()
        ),
        (text(), text(), any::<Option<(u8, u8, u8)>>()).prop_map(
            |(proposal_id, proposal_digest, rollout)| v1::Approval {
                proposal_id,
                proposal_digest,
                rollout: rollout.map(|(a, b, c)| v1::RolloutConfig {
                    initial_percent: f64::from(a),
                    increment_per_minute: f64::from(b),
                    max_percent: f64::from(c),
                }),
            }
            .into()
        ),
        (text(), text()).prop_map(|(proposal_id, reason)| v1::Rejection {
            proposal_id,
            reason
        }
        .into()),
        (text(), prop::option::of(action())).prop_map(|(reason, action)| v1::Enforce {
            reason,
            action
        }
        .into()),
        (any::<u64>(), text()).prop_map(|(version, source_uri)| v1::CatalogUpdate {
            version,
            source_uri
        }
        .into()),
    ]
}

fn envelope() -> impl Strategy<Value = Envelope> {
    (header(), prop_oneof![session_body(), governance_body()]).prop_map(|(header, body)| Envelope {
        header: Some(header),
        body: Some(body),
    })
}

/// Byte strings worth feeding the decoder: arbitrary ones, and valid envelopes cut, flipped or
/// spliced.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        (envelope(), any::<prop::sample::Index>()).prop_map(|(e, cut)| {
            let bytes = e.encode_to_vec();
            bytes[..cut.index(bytes.len() + 1)].to_vec()
        }),
        (envelope(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(e, at, mask)| {
            let mut bytes = e.encode_to_vec();
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
            bytes
        }),
        (envelope(), prop::collection::vec(any::<u8>(), 0..16)).prop_map(|(e, tail)| {
            let mut bytes = e.encode_to_vec();
            bytes.extend(tail);
            bytes
        }),
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    // AC-PROTOCOL-12
    #[test]
    fn decoding_any_bytes_yields_ok_or_a_typed_error(bytes in hostile_bytes()) {
        let limits = FrameLimits { max_frame_bytes: 1024, max_payload_bytes: 256 };
        let len = bytes.len();
        match decode_client_frame(Frame::Binary(Bytes::from(bytes)), &limits) {
            Ok(decoded) => prop_assert!(!decoded.command.kind().is_empty()),
            Err(error) => {
                prop_assert_ne!(error.code(), v1::ErrorCode::Unspecified);
                if len == 0 {
                    prop_assert_eq!(error, ProtocolError::EmptyFrame);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    // AC-PROTOCOL-13
    #[test]
    fn valid_envelopes_round_trip(envelope in envelope()) {
        let bytes = encode_envelope(&envelope);
        prop_assert_eq!(&Envelope::decode(bytes.clone()).unwrap(), &envelope);
        prop_assert_eq!(&decode_envelope(bytes.clone(), bytes.len()).unwrap(), &envelope);
        // Deterministic: re-encoding the decoded envelope gives the same bytes.
        prop_assert_eq!(encode_envelope(&Envelope::decode(bytes.clone()).unwrap()), bytes);
    }
}

/// What follows a readable header in a refused frame: top-level records with any field number but
/// the header's, any wire type (valid or not) and any contents, possibly cut short; or a body that
/// fails validation (a room outside the grammar, a server-only body).
fn tail_after_header() -> impl Strategy<Value = Vec<u8>> {
    let record = (
        2u32..=70,
        0u32..8,
        prop::collection::vec(any::<u8>(), 0..24),
    )
        .prop_map(|(field, wire_type, contents)| {
            let mut bytes = Vec::new();
            prost::encoding::encode_varint(u64::from(field << 3 | wire_type), &mut bytes);
            if wire_type == 2 {
                prost::encoding::encode_varint(contents.len() as u64, &mut bytes);
            }
            bytes.extend(contents);
            bytes
        });
    prop_oneof![
        (
            prop::collection::vec(record, 0..4),
            any::<prop::sample::Index>()
        )
            .prop_map(|(records, cut)| {
                let bytes = records.concat();
                bytes[..cut.index(bytes.len() + 1)].to_vec()
            }),
        "[a-z]{0,4}[.*> ][a-z]{0,4}".prop_map(|room| Envelope {
            header: None,
            body: Some(Body::Join(v1::Join {
                room,
                ..v1::Join::default()
            })),
        }
        .encode_to_vec()),
        Just(
            Envelope {
                header: None,
                body: Some(Body::Drain(v1::Drain::default()))
            }
            .encode_to_vec()
        ),
    ]
}

proptest! {
    #![proptest_config(config(2048))]

    // AC-PROTOCOL-17: a refused frame whose header can be read gives back that header, so the
    // reply echoes the same correlation id.
    #[test]
    fn refused_frames_with_a_readable_header_keep_their_correlation_id(
        correlation_id in "[A-Za-z0-9_-]{0,32}",
        protocol_version in 0u32..4,
        tail in tail_after_header(),
    ) {
        let limits = FrameLimits { max_frame_bytes: 1024, max_payload_bytes: 256 };
        let header = Header { protocol_version, correlation_id: correlation_id.clone(), ..Header::default() };
        let mut bytes = Envelope { header: Some(header), body: None }.encode_to_vec();
        bytes.extend(tail);
        let frame = Frame::Binary(Bytes::from(bytes));
        prop_assume!(decode_client_frame(frame.clone(), &limits).is_err());
        let read = refused_header(&frame, &limits);
        prop_assert!(read.is_some());
        let expected = Some(correlation_id).filter(|id| !id.is_empty());
        prop_assert_eq!(read.and_then(|h| h.correlation_id), expected);
    }
}

// AC-PROTOCOL-17: no header is read from a text frame, an oversized frame, JSON or bytes that hold
// no complete header; an id over its bound is never echoed.
#[test]
fn refused_frames_without_a_readable_header_have_none() {
    let limits = FrameLimits {
        max_frame_bytes: 64,
        max_payload_bytes: 32,
    };
    let with_id = |id: String| {
        Envelope {
            header: Some(Header {
                protocol_version: 1,
                correlation_id: id,
                ..Header::default()
            }),
            body: Some(Body::Heartbeat(v1::Heartbeat {})),
        }
        .encode_to_vec()
    };
    let oversized = with_id("x".repeat(80));
    let cut = with_id("abc".to_owned());
    for frame in [
        Frame::Text,
        Frame::Binary(Bytes::new()),
        Frame::Binary(Bytes::from(oversized)),
        Frame::Binary(Bytes::from_static(b"{\"join\":{\"room\":\"a\"}}")),
        Frame::Binary(Bytes::copy_from_slice(&cut[..cut.len() - 6])),
    ] {
        assert_eq!(refused_header(&frame, &limits), None, "{frame:?}");
    }
    let limits = FrameLimits::default();
    let long = Frame::Binary(Bytes::from(with_id("x".repeat(200))));
    assert!(decode_client_frame(long.clone(), &limits).is_err());
    let read = refused_header(&long, &limits).unwrap();
    assert_eq!(read.correlation_id, None);
}

proptest! {
    #![proptest_config(config(256))]

    // AC-HISTORY-1: merging a position into a stored message frame sets its offset and epoch and
    // changes nothing else, whatever the message held.
    #[test]
    fn merging_a_position_sets_offset_and_epoch_only(
        header in proptest::option::of(Just(Header { protocol_version: 1, message_id: "m".into(), ..Header::default() })),
        room in text(),
        payload in proptest::collection::vec(any::<u8>(), 0..64),
        content_type in text(),
        offset in any::<u64>(),
        epoch in text(),
    ) {
        let stored = Envelope {
            header,
            body: Some(Body::Message(v1::Message { room, payload: payload.into(), content_type, ..v1::Message::default() })),
        };
        let merged = arqon_proto::outbound::with_position(&stored.encode_to_vec(), offset, &epoch);
        let decoded = Envelope::decode(merged).unwrap();
        let mut expected = stored;
        if let Some(Body::Message(m)) = &mut expected.body {
            m.offset = offset;
            m.epoch = epoch;
        }
        prop_assert_eq!(decoded, expected);
    }
}

proptest! {
    #![proptest_config(config(256))]

    // AC-PROTOCOL-18: whatever a burst holds (any envelopes, some larger than a batch), packing it
    // and unpacking every frame gives the same envelopes in the same order; a batch frame holds at
    // least two, stays within the limit and has no header; a frame sent alone is the frame itself.
    #[test]
    fn a_packed_burst_unpacks_to_the_same_envelopes_in_order(
        burst in prop::collection::vec(
            (envelope(), prop_oneof![9 => Just(0usize), 1 => 8_000usize..20_000]),
            0..40,
        ),
    ) {
        let frames: Vec<Bytes> = burst
            .into_iter()
            .map(|(mut envelope, padding)| {
                if let Some(header) = &mut envelope.header {
                    header.tracestate.push_str(&"x".repeat(padding));
                }
                encode_envelope(&envelope)
            })
            .collect();
        let packed = arqon_proto::batch::pack(&frames);
        let mut unpacked = Vec::new();
        let (mut batches, mut batched) = (0, 0);
        for message in &packed.messages {
            let envelope = Envelope::decode(message.clone()).unwrap();
            if let Some(Body::Batch(batch)) = &envelope.body {
                prop_assert!(envelope.header.is_none());
                prop_assert!(batch.envelopes.len() >= 2);
                prop_assert!(message.len() <= arqon_proto::batch::MAX_BATCH_BYTES);
                batches += 1;
                batched += batch.envelopes.len() as u64;
            } else {
                prop_assert!(frames.contains(message), "a lone frame is sent as it is");
            }
            unpacked.extend(arqon_proto::batch::unpack(envelope));
        }
        let expected: Vec<Envelope> =
            frames.iter().map(|f| Envelope::decode(f.clone()).unwrap()).collect();
        prop_assert_eq!(unpacked, expected);
        prop_assert_eq!((packed.batches, packed.batched), (batches, batched));
    }
}

//! The trust boundary: every kind of bad frame gives its own typed error; good frames give commands.

use arqon_proto::decode::{DEFAULT_MAX_FRAME_BYTES, is_traceparent};
use arqon_proto::names::{RoomName, TenantId, UserId};
use arqon_proto::outbound::{self, envelope, server_header};
use arqon_proto::v1::{
    self, Alert, AlertSeverity, Approval, Envelope, ErrorCode, Header, Proposal, RolloutConfig,
    Telemetry, envelope::Body,
};
use arqon_proto::{
    ClientCommand, ClientEnvelope, Frame, FrameLimits, GovernanceCommand, ProtocolError, Stamp,
    decode_client_frame, decode_envelope, encode_envelope,
};
use bytes::Bytes;
use prost::Message as _;

fn header() -> Header {
    Header {
        protocol_version: 1,
        ..Header::default()
    }
}

fn decode_bytes(bytes: impl Into<Bytes>) -> Result<ClientEnvelope, ProtocolError> {
    decode_client_frame(Frame::Binary(bytes.into()), &FrameLimits::default())
}

fn decode(envelope: &Envelope) -> Result<ClientEnvelope, ProtocolError> {
    decode_bytes(encode_envelope(envelope))
}

fn decode_body(body: impl Into<Body>) -> Result<ClientCommand, ProtocolError> {
    decode(&envelope(header(), body)).map(|e| e.command)
}

fn publish(room: &str, payload: &'static [u8]) -> v1::Publish {
    v1::Publish {
        room: room.into(),
        payload: Bytes::from_static(payload),
        content_type: "text/plain".into(),
    }
}

fn room(name: &str) -> RoomName {
    RoomName::parse(name).unwrap()
}

// AC-PROTOCOL-5
#[test]
fn oversized_frame_is_refused_on_length_alone() {
    // Garbage that would be `Malformed` if it were decoded at all.
    let frame = vec![0xff; DEFAULT_MAX_FRAME_BYTES + 1];
    let err = decode_bytes(frame).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::FrameTooLarge {
            len: DEFAULT_MAX_FRAME_BYTES + 1,
            max: DEFAULT_MAX_FRAME_BYTES
        }
    );
    assert_eq!(err.code(), ErrorCode::FrameTooLarge);
    let exactly = vec![0xff; DEFAULT_MAX_FRAME_BYTES];
    assert!(matches!(
        decode_bytes(exactly),
        Err(ProtocolError::Malformed { .. })
    ));
}

// AC-PROTOCOL-6
#[test]
fn text_frame_is_refused() {
    let err = decode_client_frame(Frame::Text, &FrameLimits::default()).unwrap_err();
    assert_eq!(err, ProtocolError::TextFrame);
    assert_eq!(err.code(), ErrorCode::TextFrame);
}

// AC-PROTOCOL-7
#[test]
fn json_in_a_binary_frame_is_named_json() {
    for json in [
        &br#"{"type":"publish","room":"general","payload":"hi"}"#[..],
        b"[1,2,3]",
        b" \n {\"join\": {\"room\": \"a\"}}",
        b"{}",
    ] {
        let err = decode_bytes(json).unwrap_err();
        assert_eq!(
            err,
            ProtocolError::Json,
            "{}",
            String::from_utf8_lossy(json)
        );
        assert_eq!(err.code(), ErrorCode::ProtocolError);
    }
    // Not JSON, even though it starts like it.
    assert!(matches!(
        decode_bytes(&b"{not json"[..]),
        Err(ProtocolError::Malformed { .. })
    ));
}

// AC-PROTOCOL-8
#[test]
fn truncated_frame_is_named_truncated() {
    let full = encode_envelope(&envelope(
        Header {
            message_id: "m-1".into(),
            ..header()
        },
        publish("general", b"hello, world"),
    ));
    assert!(decode_bytes(full.clone()).is_ok());
    for cut in 1..full.len() {
        let err = decode_bytes(full.slice(..cut)).unwrap_err();
        assert!(
            matches!(
                err,
                ProtocolError::Truncated | ProtocolError::MissingField { .. }
            ),
            "cut at {cut}: {err:?}"
        );
    }
    // Cut inside the payload: the body field is incomplete.
    assert_eq!(
        decode_bytes(full.slice(..full.len() - 3)),
        Err(ProtocolError::Truncated)
    );
}

// AC-PROTOCOL-8
#[test]
fn random_bytes_are_malformed() {
    for garbage in [
        &[0xde, 0xad, 0xbe, 0xef, 0x00, 0x13, 0x37][..],
        &[0x07, 0x01],
        &[0x00],
        &[0xff; 11],
        b"\x08\x01\x0f\xff",
    ] {
        let err = decode_bytes(garbage).unwrap_err();
        assert!(
            matches!(err, ProtocolError::Malformed { .. }),
            "{garbage:?}: {err:?}"
        );
        assert_eq!(err.code(), ErrorCode::ProtocolError);
    }
    assert_eq!(decode_bytes(Bytes::new()), Err(ProtocolError::EmptyFrame));
}

// AC-PROTOCOL-9
#[test]
fn other_protocol_versions_are_refused() {
    let two = Envelope {
        header: Some(Header {
            protocol_version: 2,
            ..Header::default()
        }),
        body: Some(Body::Heartbeat(v1::Heartbeat {})),
    };
    let err = decode(&two).unwrap_err();
    assert_eq!(
        err,
        ProtocolError::UnsupportedVersion {
            got: 2,
            supported: 1
        }
    );
    assert_eq!(err.code(), ErrorCode::UnsupportedVersion);
    let unset = Envelope {
        header: Some(Header::default()),
        ..two.clone()
    };
    assert_eq!(
        decode(&unset),
        Err(ProtocolError::MissingField {
            field: "header.protocol_version"
        })
    );
    let headless = Envelope {
        header: None,
        ..two
    };
    assert_eq!(
        decode(&headless),
        Err(ProtocolError::MissingField { field: "header" })
    );
    let bodiless = Envelope {
        header: Some(header()),
        body: None,
    };
    assert_eq!(
        decode(&bodiless),
        Err(ProtocolError::MissingField { field: "body" })
    );
}

// AC-PROTOCOL-10
#[test]
fn rooms_outside_the_grammar_are_refused_in_every_body() {
    for bad in ["a.b", "*", ">", "", "sp ace", &"r".repeat(129)] {
        let bodies: [Body; 4] = [
            v1::Join {
                room: bad.into(),
                ..Default::default()
            }
            .into(),
            v1::Leave { room: bad.into() }.into(),
            publish(bad, b"x").into(),
            v1::PresenceRequest {
                room: bad.into(),
                ..Default::default()
            }
            .into(),
        ];
        for body in bodies {
            let err = decode_body(body).unwrap_err();
            assert!(matches!(err, ProtocolError::InvalidRoom(_)), "{bad:?}");
            assert_eq!(err.code(), ErrorCode::InvalidRoom);
        }
    }
}

// AC-PROTOCOL-11
#[test]
fn server_stamped_fields_are_dropped_and_restamped() {
    let forged = Header {
        protocol_version: 1,
        message_id: "m-7".into(),
        correlation_id: "c-7".into(),
        twist_id: String::new(),
        timestamp_us: 1,
        traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
        tracestate: "vendor=1".into(),
        tenant_id: "other-tenant".into(),
        sender_user_id: "admin".into(),
        sender_session_id: "someone-elses-session".into(),
    };
    let decoded = decode(&envelope(forged, publish("general", b"hi"))).unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let user = UserId::parse("alice").unwrap();
    let stamp = Stamp {
        tenant: &tenant,
        user: &user,
        session_id: "s-1",
        timestamp_us: 1_700_000_000_000_000,
    };
    let mut fresh = 0;
    let stamped = stamp.header(&decoded.header, || {
        fresh += 1;
        format!("twist-{fresh}")
    });
    assert_eq!(stamped.tenant_id, "acme");
    assert_eq!(stamped.sender_user_id, "alice");
    assert_eq!(stamped.sender_session_id, "s-1");
    assert_eq!(stamped.timestamp_us, 1_700_000_000_000_000);
    assert_eq!(stamped.twist_id, "twist-1", "absent twist_id is filled");
    assert_eq!(stamped.message_id, "m-7");
    assert_eq!(stamped.correlation_id, "c-7");
    assert_eq!(stamped.tracestate, "vendor=1");
    assert_eq!(stamped.protocol_version, 1);

    // A client twist_id is kept; a missing message_id is filled too.
    let client = arqon_proto::ClientHeader {
        twist_id: Some("t-client".into()),
        ..Default::default()
    };
    let stamped = stamp.header(&client, || "fresh".into());
    assert_eq!(
        (stamped.twist_id.as_str(), stamped.message_id.as_str()),
        ("t-client", "fresh")
    );
}

// AC-PROTOCOL-14
#[test]
fn server_only_bodies_from_a_client_are_refused() {
    let bodies: [(Body, &str); 7] = [
        (v1::Welcome::default().into(), "welcome"),
        (v1::Batch::default().into(), "batch"),
        (v1::Message::default().into(), "message"),
        (v1::PresenceUpdate::default().into(), "presence_update"),
        (v1::PresenceLeave::default().into(), "presence_leave"),
        (v1::Drain::default().into(), "drain"),
        (v1::Error::default().into(), "error"),
    ];
    for (body, name) in bodies {
        let err = decode_body(body).unwrap_err();
        assert_eq!(err, ProtocolError::ServerOnlyBody { body: name });
        assert_eq!(err.code(), ErrorCode::ProtocolError);
    }
}

// AC-PROTOCOL-15
#[test]
fn every_protocol_error_has_a_specific_code() {
    let all = [
        ProtocolError::TextFrame,
        ProtocolError::FrameTooLarge { len: 2, max: 1 },
        ProtocolError::EmptyFrame,
        ProtocolError::Json,
        ProtocolError::Truncated,
        ProtocolError::Malformed { reason: "x".into() },
        ProtocolError::UnsupportedVersion {
            got: 2,
            supported: 1,
        },
        ProtocolError::MissingField { field: "body" },
        ProtocolError::InvalidField {
            field: "f",
            reason: "r",
        },
        ProtocolError::InvalidRoom(RoomName::parse("").unwrap_err()),
        ProtocolError::PayloadTooLarge { len: 2, max: 1 },
        ProtocolError::ServerOnlyBody { body: "welcome" },
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for err in &all {
        assert_ne!(err.code(), ErrorCode::Unspecified, "{err:?}");
        assert!(kinds.insert(err.kind()), "duplicate kind {}", err.kind());
        // The error travels to the client as an Error body with that code and message.
        let tenant = TenantId::parse("acme").unwrap();
        let reply = outbound::protocol_error(server_header(&tenant, "m".into(), "c-1", 5), err);
        let Some(Body::Error(body)) = reply.body else {
            panic!("not an error body")
        };
        assert_eq!(body.code(), err.code());
        assert_eq!(body.message, err.to_string());
        assert_eq!(body.correlation_id, "c-1");
    }
}

#[test]
fn good_client_bodies_become_commands() {
    let metadata: std::collections::BTreeMap<String, String> =
        [("status".to_owned(), "online".to_owned())].into();
    assert_eq!(
        decode_body(v1::Join {
            room: "general".into(),
            metadata: metadata.clone(),
            since: None,
        }),
        Ok(ClientCommand::Join {
            room: room("general"),
            metadata,
            since: None,
        })
    );
    assert_eq!(
        decode_body(v1::Leave {
            room: "general".into()
        }),
        Ok(ClientCommand::Leave {
            room: room("general")
        })
    );
    assert_eq!(
        decode_body(publish("general", b"hi")),
        Ok(ClientCommand::Publish {
            room: room("general"),
            payload: Bytes::from_static(b"hi"),
            content_type: "text/plain".into()
        })
    );
    assert_eq!(decode_body(v1::Heartbeat {}), Ok(ClientCommand::Heartbeat));
    assert_eq!(
        decode_body(v1::Ping { nonce: 9 }),
        Ok(ClientCommand::Ping { nonce: 9 })
    );
    assert_eq!(
        decode_body(v1::Pong { nonce: 9 }),
        Ok(ClientCommand::Pong { nonce: 9 })
    );
    let Ok(ClientCommand::Refresh { token }) = decode_body(v1::Refresh {
        token: "jwt.jwt.sig".into(),
    }) else {
        panic!("refresh")
    };
    assert_eq!(token.expose(), "jwt.jwt.sig");
    assert!(!format!("{token:?}").contains("jwt"));
    assert_eq!(
        decode_body(v1::PresenceRequest {
            room: "general".into(),
            page_size: 50,
            page_token: String::new()
        }),
        Ok(ClientCommand::PresenceRequest {
            room: room("general"),
            page_size: 50,
            page_token: None
        })
    );
    assert_eq!(
        decode_body(v1::Ack {
            acked_message_id: "m-1".into()
        }),
        Ok(ClientCommand::Ack {
            message_id: "m-1".into()
        })
    );
}

#[test]
fn limits_on_payload_metadata_ids_and_tokens() {
    let limits = FrameLimits {
        max_frame_bytes: 1024,
        max_payload_bytes: 4,
    };
    let frame = encode_envelope(&envelope(header(), publish("r", b"12345")));
    assert_eq!(
        decode_client_frame(Frame::Binary(frame), &limits).map(|e| e.command),
        Err(ProtocolError::PayloadTooLarge { len: 5, max: 4 })
    );
    let too_many = (0..17).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    assert!(matches!(
        decode_body(v1::Join {
            room: "r".into(),
            metadata: too_many,
            since: None,
        }),
        Err(ProtocolError::InvalidField {
            field: "join.metadata",
            ..
        })
    ));
    let long_id = Header {
        message_id: "m".repeat(129),
        ..header()
    };
    assert!(matches!(
        decode(&envelope(long_id, v1::Heartbeat {})),
        Err(ProtocolError::InvalidField {
            field: "header.message_id",
            ..
        })
    ));
    assert_eq!(
        decode_body(v1::Refresh::default()),
        Err(ProtocolError::MissingField {
            field: "refresh.token"
        })
    );
}

#[test]
fn traceparent_follows_w3c_and_a_bad_one_is_dropped() {
    assert!(is_traceparent(
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    ));
    for bad in [
        "",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    ] {
        assert!(!is_traceparent(bad), "{bad:?}");
    }
    assert!(is_traceparent(
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra"
    ));
    let bad_trace = Header {
        traceparent: "garbage".into(),
        tracestate: "vendor=1".into(),
        ..header()
    };
    let decoded = decode(&envelope(bad_trace, v1::Heartbeat {})).unwrap();
    assert_eq!(decoded.header.trace, None);
}

#[test]
fn governance_proposals_are_checked() {
    let proposal = Proposal {
        id: "prop_001".into(),
        variant_id: Some(42),
        reason: "latency regression".into(),
        confidence: 0.92,
        ..Default::default()
    };
    assert!(matches!(
        decode_body(proposal.clone()),
        Ok(ClientCommand::Governance(GovernanceCommand::Proposal(_)))
    ));
    for (bad, field) in [
        (
            Proposal {
                confidence: 1.5,
                ..proposal.clone()
            },
            "proposal.confidence",
        ),
        (
            Proposal {
                confidence: f64::NAN,
                ..proposal.clone()
            },
            "proposal.confidence",
        ),
        (
            Proposal {
                params: [("x".to_owned(), f64::INFINITY)].into(),
                ..proposal.clone()
            },
            "proposal.params",
        ),
    ] {
        assert!(
            matches!(decode_body(bad), Err(ProtocolError::InvalidField { field: f, .. }) if f == field)
        );
    }
    assert_eq!(
        decode_body(Proposal {
            variant_id: None,
            ..proposal
        }),
        Err(ProtocolError::MissingField {
            field: "proposal.variant_id"
        })
    );
}

#[test]
fn governance_bodies_are_checked() {
    assert_eq!(
        decode_body(Telemetry::default()),
        Err(ProtocolError::MissingField {
            field: "telemetry.node_id"
        })
    );
    assert_eq!(
        decode_body(Alert::default()),
        Err(ProtocolError::MissingField {
            field: "alert.severity"
        })
    );
    let alert = Alert {
        severity: AlertSeverity::Critical.into(),
        ..Default::default()
    };
    let Ok(ClientCommand::Governance(command)) = decode_body(alert) else {
        panic!("alert")
    };
    assert!(command.is_upstream());
    let approval = |rollout| Approval {
        proposal_id: "prop_001".into(),
        proposal_digest: "sha256:00".into(),
        rollout: Some(rollout),
    };
    for bad in [
        RolloutConfig {
            initial_percent: 50.0,
            increment_per_minute: 1.0,
            max_percent: 10.0,
        },
        RolloutConfig {
            initial_percent: -1.0,
            increment_per_minute: 1.0,
            max_percent: 10.0,
        },
        RolloutConfig {
            initial_percent: 1.0,
            increment_per_minute: -1.0,
            max_percent: 10.0,
        },
    ] {
        assert!(matches!(
            decode_body(approval(bad)),
            Err(ProtocolError::InvalidField { .. })
        ));
    }
    let Ok(ClientCommand::Governance(command)) = decode_body(approval(RolloutConfig {
        initial_percent: 5.0,
        increment_per_minute: 5.0,
        max_percent: 100.0,
    })) else {
        panic!("approval")
    };
    assert!(!command.is_upstream());
    assert!(matches!(command.into_body(), Body::Approval(_)));
    assert_eq!(
        decode_body(v1::Enforce::default()),
        Err(ProtocolError::MissingField {
            field: "enforce.action"
        })
    );
}

#[test]
fn decode_envelope_accepts_server_frames_for_clients() {
    let tenant = TenantId::parse("acme").unwrap();
    let drain = outbound::drain(
        server_header(&tenant, "m-1".into(), "", 10),
        "deploy".into(),
        500,
    );
    let bytes = encode_envelope(&drain);
    assert_eq!(decode_envelope(bytes, 1024), Ok(drain));
}

// AC-PROTOCOL-16
#[test]
fn fields_from_a_newer_minor_are_ignored_and_unknown_bodies_refused() {
    let known = envelope(header(), publish("general", b"hi"));
    let expected = decode(&known).unwrap();
    // A new header field (tag 20, string) and a new envelope field (tag 99, varint) from a newer
    // MINOR: append them the way a newer encoder would.
    let mut newer_header = header().encode_to_vec();
    newer_header.extend([0xa2, 0x01, 3, b'n', b'e', b'w']);
    let mut frame = vec![0x0a, u8::try_from(newer_header.len()).unwrap()];
    frame.extend(newer_header);
    frame.extend(encode_envelope(&Envelope {
        header: None,
        ..known
    }));
    frame.extend([0x98, 0x06, 0x01]);
    assert_eq!(decode_bytes(frame), Ok(expected));

    // A body this server does not know (tag 90, an empty message).
    let mut frame = encode_envelope(&Envelope {
        header: Some(header()),
        body: None,
    })
    .to_vec();
    frame.extend([0xd2, 0x05, 0x00]);
    assert_eq!(
        decode_bytes(frame),
        Err(ProtocolError::MissingField { field: "body" })
    );
}

//! Benchmark of the trust boundary: decode + validate a 1 KiB `Publish` frame, and encode a stamped
//! `Message` (the performance budget in `specs/protocol.md`). Run: `cargo bench -p arqon-proto`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1::{Header, Publish};
use arqon_proto::{
    ClientCommand, Frame, FrameLimits, ProtocolError, Stamp, decode_client_frame, encode_envelope,
    outbound,
};
use bytes::Bytes;

const ITERATIONS: u32 = 200_000;

fn per_op(mut op: impl FnMut()) -> Duration {
    for _ in 0..ITERATIONS / 10 {
        op();
    }
    let started = Instant::now();
    for _ in 0..ITERATIONS {
        op();
    }
    started.elapsed() / ITERATIONS
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let frame = encode_envelope(&outbound::envelope(
        Header {
            protocol_version: 1,
            message_id: "m-0001".into(),
            correlation_id: "c-0001".into(),
            traceparent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
            ..Header::default()
        },
        Publish {
            room: "general".into(),
            payload: Bytes::from(vec![0x5a; 1024]),
            content_type: "application/octet-stream".into(),
        },
    ));
    let limits = FrameLimits::default();
    let decode = per_op(|| {
        let decoded = decode_client_frame(Frame::Binary(black_box(frame.clone())), &limits);
        black_box(decoded).ok();
    });
    println!(
        "decode+validate {}-byte publish frame: {} ns/op",
        frame.len(),
        decode.as_nanos()
    );

    let inbound = decode_client_frame(Frame::Binary(frame.clone()), &limits)?;
    let ClientCommand::Publish {
        room,
        payload,
        content_type,
    } = inbound.command
    else {
        return Err(ProtocolError::MissingField { field: "publish" }.into());
    };
    let (tenant, user) = (TenantId::parse("acme")?, UserId::parse("alice")?);
    let stamp = Stamp {
        tenant: &tenant,
        user: &user,
        session_id: "s-0001",
        timestamp_us: 1,
    };
    let encode = per_op(|| {
        let header = stamp.header(&inbound.header, || "twist".to_owned());
        let routed = outbound::message(header, &room, payload.clone(), content_type.clone());
        black_box(encode_envelope(black_box(&routed)));
    });
    println!("stamp+encode 1 KiB message: {} ns/op", encode.as_nanos());
    Ok(())
}

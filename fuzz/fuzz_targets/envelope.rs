//! Fuzz target `envelope`: arbitrary bytes through the trust-boundary decoder (AC-PROTOCOL-12).
//!
//! The decoder must return, never panic: `Ok` or a typed `ProtocolError` with a real error code.
//! A frame it accepts must also decode as an envelope that survives an encode/decode round trip.
#![no_main]

use arqon_proto::v1::ErrorCode;
use arqon_proto::{decode_client_frame, decode_envelope, encode_envelope, Frame, FrameLimits};
use bytes::Bytes;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let limits = FrameLimits::default();
    let frame = Bytes::copy_from_slice(data);
    match decode_client_frame(Frame::Binary(frame.clone()), &limits) {
        Ok(accepted) => {
            assert!(!accepted.command.kind().is_empty());
            let envelope = decode_envelope(frame, limits.max_frame_bytes)
                .expect("a frame the client decoder accepts is an envelope");
            let again = decode_envelope(encode_envelope(&envelope), usize::MAX)
                .expect("a re-encoded envelope decodes");
            assert_eq!(envelope, again, "round trip changed the envelope");
        }
        Err(error) => assert_ne!(error.code(), ErrorCode::Unspecified, "{error}"),
    }
});

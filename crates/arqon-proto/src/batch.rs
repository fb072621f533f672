//! Batch frames: envelopes queued for one client together, sent as one `Batch` envelope in one
//! WebSocket frame (`specs/protocol.md`, "Batch frames"), to a client that offered the
//! `arqon.v1.batch` subprotocol.
//!
//! Every envelope the server sends is encoded once, when it is made (a room message once per
//! publish, whatever its number of receivers). A batch is built from those encoded frames without
//! decoding or re-encoding them: a `repeated Envelope` field is, on the wire, each element's bytes
//! behind its tag and length, so wrapping is a copy behind a few prefix bytes.

use bytes::{BufMut as _, Bytes, BytesMut};
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::v1::{Envelope, envelope::Body};

/// The WebSocket subprotocol a client offers to take batch frames; the server echoes it when it
/// will send them.
pub const SUBPROTOCOL: &str = "arqon.v1.batch";

/// The `Envelope.batch` field number.
const ENVELOPE_BATCH: u32 = 38;
/// The `Batch.envelopes` field number.
const BATCH_ENVELOPES: u32 = 1;

/// Largest batch frame the server builds. A single envelope larger than this is sent alone, as
/// it would be without batching; clients size their frame limit for single envelopes already
/// (the node's `max_frame_bytes`), and 16 KiB is under every SDK's default limit. It matches the
/// Shield's 16 KiB socket write buffer, so a batch leaves in one `send`: 64 KiB batches measured
/// the same or slower (a larger per-connection buffer to copy into), `BENCHMARKS.md`.
pub const MAX_BATCH_BYTES: usize = 16 * 1024;

/// The bytes one envelope adds to a batch: its tag, its length and itself.
fn element_len(frame: &[u8]) -> usize {
    key_len(BATCH_ENVELOPES) + encoded_len_varint(frame.len() as u64) + frame.len()
}

/// Encodes `frames` (each an encoded `Envelope`) as one `Envelope { batch: Batch { envelopes } }`.
///
/// Decoding the result gives exactly the envelopes that decoding each frame gives, in order.
pub fn encode(frames: &[Bytes]) -> Bytes {
    let inner: usize = frames.iter().map(|frame| element_len(frame)).sum();
    let total = key_len(ENVELOPE_BATCH) + encoded_len_varint(inner as u64) + inner;
    let mut out = BytesMut::with_capacity(total);
    encode_key(ENVELOPE_BATCH, WireType::LengthDelimited, &mut out);
    encode_varint(inner as u64, &mut out);
    for frame in frames {
        encode_key(BATCH_ENVELOPES, WireType::LengthDelimited, &mut out);
        encode_varint(frame.len() as u64, &mut out);
        out.put_slice(frame);
    }
    out.freeze()
}

/// The envelopes one received frame holds, in order: a batch's envelopes, or the envelope itself.
pub fn unpack(envelope: Envelope) -> Vec<Envelope> {
    match envelope.body {
        Some(Body::Batch(batch)) => batch.envelopes,
        _ => vec![envelope],
    }
}

/// A burst packed for the socket.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Packed {
    /// The WebSocket messages to send, in order.
    pub messages: Vec<Bytes>,
    /// How many of them are batch frames.
    pub batches: u64,
    /// How many envelopes those batch frames hold.
    pub batched: u64,
}

/// Packs a burst of queued frames into WebSocket messages, in order: runs of two or more frames
/// that fit in [`MAX_BATCH_BYTES`] become one batch each; a frame alone (a lone message, or one
/// too large to share a batch) is sent as it is.
pub fn pack(frames: &[Bytes]) -> Packed {
    let mut packed = Packed::default();
    let Some((first, rest)) = frames.split_first() else {
        return packed;
    };
    if rest.is_empty() {
        packed.messages.push(first.clone());
        return packed;
    }
    let budget = batch_budget();
    // The current run is `frames[start..]` up to the frame being looked at.
    let mut start = 0;
    let mut run_bytes = 0;
    for (at, frame) in frames.iter().enumerate() {
        let len = element_len(frame);
        if at > start && run_bytes + len > budget {
            packed.close_run(&frames[start..at]);
            start = at;
            run_bytes = 0;
        }
        run_bytes += len;
    }
    packed.close_run(&frames[start..]);
    packed
}

impl Packed {
    /// Adds one message for a run: the frame itself when it is alone, else their batch.
    fn close_run(&mut self, run: &[Bytes]) {
        match run {
            [] => {}
            [frame] => self.messages.push(frame.clone()),
            frames => {
                self.batches += 1;
                self.batched += frames.len() as u64;
                self.messages.push(encode(frames));
            }
        }
    }
}

/// The bytes a batch's elements may take: [`MAX_BATCH_BYTES`] less the outer tag and length.
fn batch_budget() -> usize {
    MAX_BATCH_BYTES - key_len(ENVELOPE_BATCH) - encoded_len_varint(MAX_BATCH_BYTES as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::v1::{Header, Message};
    use prost::Message as _;

    fn frame(n: u64, payload_len: usize) -> Bytes {
        let envelope = Envelope {
            header: Some(Header {
                protocol_version: 1,
                message_id: format!("m-{n}"),
                ..Header::default()
            }),
            body: Some(Body::Message(Message {
                room: "lobby".to_owned(),
                payload: Bytes::from(vec![b'x'; payload_len]),
                offset: n,
                ..Message::default()
            })),
        };
        Bytes::from(envelope.encode_to_vec())
    }

    fn decode(message: &Bytes) -> Vec<Envelope> {
        let envelope = Envelope::decode(message.clone()).unwrap();
        if matches!(envelope.body, Some(Body::Batch(_))) {
            assert!(envelope.header.is_none());
        }
        unpack(envelope)
    }

    #[test]
    fn a_batch_decodes_to_the_envelopes_it_was_made_of_in_order() {
        let frames: Vec<Bytes> = (0..5).map(|n| frame(n, 64)).collect();
        let batch = encode(&frames);
        let expected: Vec<Envelope> = frames
            .iter()
            .map(|f| Envelope::decode(f.clone()).unwrap())
            .collect();
        assert_eq!(decode(&batch), expected);
        // The encoder's length arithmetic is the one prost would use.
        let reencoded = Envelope {
            header: None,
            body: Some(Body::Batch(crate::v1::Batch {
                envelopes: expected,
            })),
        }
        .encode_to_vec();
        assert_eq!(batch.as_ref(), reencoded.as_slice());
    }

    #[test]
    fn a_lone_frame_is_sent_as_it_is() {
        let one = vec![frame(1, 10)];
        assert_eq!(pack(&one).messages, one);
        assert_eq!(pack(&[]), Packed::default());
    }

    #[test]
    fn a_burst_becomes_batches_under_the_size_limit_in_order() {
        // 1,000 frames of about 1 KiB: several batches, each under the limit, every frame once.
        let frames: Vec<Bytes> = (0..1_000).map(|n| frame(n, 1_000)).collect();
        let packed = pack(&frames);
        let messages = packed.messages;
        assert!(
            messages.len() > 1 && messages.len() < 100,
            "{}",
            messages.len()
        );
        assert_eq!(packed.batches, messages.len() as u64);
        assert_eq!(packed.batched, 1_000);
        let mut offsets = Vec::new();
        for message in &messages {
            assert!(message.len() <= MAX_BATCH_BYTES, "{}", message.len());
            for envelope in decode(message) {
                let Some(Body::Message(m)) = envelope.body else {
                    panic!("not a message")
                };
                offsets.push(m.offset);
            }
        }
        assert_eq!(offsets, (0..1_000).collect::<Vec<_>>());
    }

    #[test]
    fn a_frame_larger_than_a_batch_goes_alone_between_batches() {
        let frames = vec![
            frame(0, 10),
            frame(1, 10),
            frame(2, MAX_BATCH_BYTES + 1),
            frame(3, 10),
        ];
        let packed = pack(&frames);
        assert_eq!((packed.batches, packed.batched), (1, 2));
        let messages = packed.messages;
        assert_eq!(messages.len(), 3);
        assert_eq!(messages[1], frames[2], "the large frame is not wrapped");
        assert_eq!(
            messages[2], frames[3],
            "the last frame alone is not wrapped"
        );
        assert_eq!(decode(&messages[0]).len(), 2);
    }
}

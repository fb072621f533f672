//! Integration tests of the wire contract: decoding at the trust boundary, golden vectors, properties.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers outside #[test] functions fail loudly by design"
)]

mod buf_contract;
mod decode_frames;
mod golden_vectors;
mod prop_envelope;

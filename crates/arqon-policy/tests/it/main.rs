//! Integration tests of the policy host: real Wasm from the committed `.wat` fixtures (never skipped),
//! plus the Rust-built example policies when their wasm32 artifacts exist.

// Shared helpers below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod policy_chain;
mod policy_failclosed;
mod policy_reload;
mod policy_sdk;
mod support;

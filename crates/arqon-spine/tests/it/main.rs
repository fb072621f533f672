//! Integration tests of the Spine over real parts: the embedded bus and real `nats-server` processes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test"
)]

mod common;
mod history_conformance;
mod spine_cluster;
mod spine_conformance;
mod spine_faults;

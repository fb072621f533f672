//! Integration tests of the test kit itself: real `nats-server` processes and the delaying proxy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test"
)]

mod testkit_jwt;
mod testkit_nats;
mod testkit_proxy;
mod testkit_ws;

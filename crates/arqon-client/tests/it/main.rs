//! Integration tests of the Rust client against a real node over real sockets.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod client_errors;
mod client_rooms;

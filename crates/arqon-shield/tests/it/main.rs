//! Integration tests of the Shield over real sockets, on the embedded spine and on real nats-server.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admin_console;
mod compat_old_client;
mod gov_e2e;
mod history_recovery;
mod obs_logs;
mod obs_metrics;
mod obs_sampling;
mod obs_traces;
mod policy_admin;
mod shield_auth;
mod shield_batch;
mod shield_cluster;
mod shield_lifecycle;
mod shield_limits;
mod shield_policy;
mod shield_rooms;
mod support;

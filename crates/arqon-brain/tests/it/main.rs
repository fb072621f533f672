//! The arqon-brain integration tests: one binary, one module per area.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::panic)]

mod audit_file;
mod audit_jetstream;
mod governance_driver;
mod governance_lease;
mod governance_service;
mod presence_nodes;

//! The Brain: drives presence replication and the governance control plane over the Spine.

pub mod audit_log;
pub mod forward;
pub mod governance;
pub mod governance_service;
pub mod lease;
pub mod presence;
pub mod trace_headers;

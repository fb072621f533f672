//! The Shield: WebSocket edge that authenticates, polices and routes envelopes, driving the Session machine.
//!
//! `specs/shield.md`. A [`Node`] serves `GET /v1/socket`, `/healthz`, `/readyz` and `/metrics`.
//! Every connection is driven by [`arqon_core::session::SessionMachine`]: the shell reads the
//! socket, steps the machine and executes its effects (send, subscribe, publish, presence, close,
//! timers). Node-wide decisions (admission, tenant publish buckets) come from
//! [`arqon_core::limits`]. Rooms fan out through one spine subscription per room per node.

mod admin;
mod admin_caller;
mod admin_console;
mod admin_history;
mod admin_policy;
mod clock;
mod conn;
mod counters;
mod error;
mod governance;
mod history;
mod hooks;
mod hub;
mod metrics;
mod node;
mod policy;
mod presence;
mod state;
pub mod telemetry;
mod tls;

pub use counters::LabelledCounter;
pub use error::ShieldError;
pub use governance::{Governance, GovernanceMetrics, audit_store, rules as governance_rules};
pub use hooks::{AllowAll, Hooks, NoPresence, PolicyHook, PresenceHook, PresenceMember};
pub use metrics::Metrics;
pub use node::{Node, admission_config, connect_spine, history_config, session_config};
pub use policy::{DEPLOY_OUTCOMES, DEPLOYS_METRIC, PolicyDeployError, WasmPolicy};

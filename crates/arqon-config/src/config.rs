//! The [`Config`] type: a node's whole configuration, one field per `arqon.toml` table. Loading and
//! checking it is the crate root's; the range and combination rules are `validate.rs`'s.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::sections::{
    AdminConfig, AuthConfig, GovernanceConfig, HistoryConfig, LimitsConfig, NodeConfig,
    PolicyConfig, PresenceConfig, SessionConfig, SpineConfig, TelemetryConfig, TlsConfig,
};

/// A node's whole configuration: the contents of `arqon.toml`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// This node.
    pub node: NodeConfig,
    /// TLS material; required unless `node.dev = true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Token verification.
    pub auth: AuthConfig,
    /// The message backbone.
    pub spine: SpineConfig,
    /// Message history and recovery.
    pub history: HistoryConfig,
    /// Admission, buffers and per-tenant limits.
    pub limits: LimitsConfig,
    /// Per-connection liveness.
    pub session: SessionConfig,
    /// Presence replication timing.
    pub presence: PresenceConfig,
    /// Wasm policy chains.
    pub policy: PolicyConfig,
    /// Governance rules and audit.
    pub governance: GovernanceConfig,
    /// Logs, traces, metrics.
    pub telemetry: TelemetryConfig,
    /// The admin API.
    pub admin: AdminConfig,
}

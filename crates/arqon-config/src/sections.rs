//! The sections of `arqon.toml`, with their defaults. Every table refuses unknown keys.
//!
//! Defaults that the sans-IO core or the policy ABI also know are taken from there, so each
//! default is written once.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use arqon_core::governance::Rules;
use arqon_core::limits as core;
use arqon_core::presence::PresenceConfig as PresenceDefaults;
use arqon_core::session::SessionConfig as SessionDefaults;
use arqon_policy_sdk::abi;
use arqon_proto::names::TenantId;

use crate::units::{ByteSize, Duration};

/// `[node]`: this node's identity and listener.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Node id, unique in the cluster (`[a-z0-9][a-z0-9_-]{0,63}`); it appears in presence and metrics.
    pub id: String,
    /// Address the WebSocket/HTTP listener binds.
    pub listen: SocketAddr,
    /// Dev mode: TLS optional, dev keys accepted, embedded spine by default. Never in production.
    pub dev: bool,
    /// How long a draining node waits for clients to leave before closing them.
    pub drain_timeout: Duration,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            id: "node-1".to_owned(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            dev: false,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// `[tls]`: certificate chain and private key (PEM). Required unless `node.dev = true`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain, PEM.
    pub cert: PathBuf,
    /// Private key, PEM.
    pub key: PathBuf,
}

/// `[auth]`: how session tokens are verified.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// A JWKS file. Exactly one of `jwks_file` and `jwks` outside dev mode.
    pub jwks_file: Option<PathBuf>,
    /// An inline JWKS (JSON text).
    pub jwks: Option<String>,
    /// Required `iss`. Outside dev mode it must be set; in dev mode it defaults to `arqon-dev`.
    pub issuer: Option<String>,
    /// Audience `aud` must contain. Outside dev mode it must be set; in dev mode it defaults to `arqon`.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf` (at most 5m).
    pub leeway: Duration,
    /// Dev mode only: where the dev key pair lives (generated on first use) when no JWKS is set.
    pub dev_keys_dir: PathBuf,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            jwks_file: None,
            jwks: None,
            issuer: None,
            audience: None,
            leeway: Duration::from_secs(30),
            dev_keys_dir: PathBuf::from(arqon_auth::DEFAULT_DEV_KEYS_DIR),
        }
    }
}

/// Which spine carries messages between nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SpineKind {
    /// In-process bus: a single node, no NATS.
    Embedded,
    /// NATS at `spine.nats_urls`.
    Nats,
}

/// `[spine]`: the message backbone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SpineConfig {
    /// `embedded` (single node) or `nats`.
    pub kind: SpineKind,
    /// NATS server URLs (`nats://`, `tls://`, `ws://` or `wss://`); required when `kind = "nats"`.
    pub nats_urls: Vec<String>,
    /// Timeout of the first connection to NATS.
    pub connect_timeout: Duration,
}

impl Default for SpineConfig {
    fn default() -> Self {
        Self {
            kind: SpineKind::Embedded,
            nats_urls: Vec::new(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// `[history]`: per-room message history and recovery (`specs/history.md`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// Keep history for tenants without their own entry. On NATS it needs `JetStream`.
    pub enabled: bool,
    /// Most messages kept per room (`JetStream` `max_msgs_per_subject`). At most 100,000.
    pub max_messages: u64,
    /// Most bytes kept per tenant, all rooms together. At most 8 GiB.
    pub max_bytes: ByteSize,
    /// Messages older than this are removed. At most 7 days.
    pub max_age: Duration,
    /// Most messages one recovering join returns; more missed means `truncated`. At most 100,000.
    pub recovery_limit: u32,
    /// Most bytes of one `HistoryPage`; the newest messages that fit are kept.
    pub page_bytes: ByteSize,
    /// `JetStream` replicas per tenant stream: 0 picks 3 in a cluster of three or more, else 1.
    pub replicas: u8,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantHistoryOverride>,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            max_messages: 10_000,
            max_bytes: ByteSize::mib(64),
            max_age: Duration::from_secs(600),
            recovery_limit: 10_000,
            page_bytes: ByteSize::mib(4),
            replicas: 0,
            tenants: BTreeMap::new(),
        }
    }
}

/// `[history.tenants.<id>]`: one tenant's history; absent keys keep `[history]`'s.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantHistoryOverride {
    /// Keep this tenant's history.
    pub enabled: Option<bool>,
    /// Most messages kept per room.
    pub max_messages: Option<u64>,
    /// Most bytes kept for the tenant.
    pub max_bytes: Option<ByteSize>,
    /// Messages older than this are removed.
    pub max_age: Option<Duration>,
}

/// Hard caps of `[history]`, whatever the file says.
pub const HISTORY_MAX_MESSAGES: u64 = 100_000;
/// Hard cap of `max_bytes`: 8 GiB.
pub const HISTORY_MAX_BYTES: u64 = 8 * 1024 * 1024 * 1024;
/// Hard cap of `max_age`: 7 days.
pub const HISTORY_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// A token-bucket rate: `per_sec` refilled per second, at most `burst` held.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Tokens added per second.
    pub per_sec: u32,
    /// Bucket capacity.
    pub burst: u32,
}

/// Limits of one tenant on one node: `[limits.tenant_defaults]`, or resolved for a tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TenantLimits {
    /// Open connections of the tenant.
    pub max_connections: u32,
    /// Open connections of one user of the tenant.
    pub max_connections_per_user: u32,
    /// Rooms one session may be in.
    pub max_rooms: u32,
    /// Largest publish payload.
    pub max_payload: ByteSize,
    /// Publish rate of one connection.
    pub connection_publish: Rate,
    /// Publish rate of the whole tenant.
    pub tenant_publish: Rate,
}

impl Default for TenantLimits {
    fn default() -> Self {
        Self::from(core::TenantLimits::default())
    }
}

impl From<core::TenantLimits> for TenantLimits {
    fn from(limits: core::TenantLimits) -> Self {
        Self {
            max_connections: limits.max_connections,
            max_connections_per_user: limits.max_connections_per_user,
            max_rooms: limits.max_rooms,
            max_payload: ByteSize::bytes(u64::from(limits.max_payload_bytes)),
            connection_publish: limits.connection_publish.into(),
            tenant_publish: limits.tenant_publish.into(),
        }
    }
}

impl From<TenantLimits> for core::TenantLimits {
    fn from(limits: TenantLimits) -> Self {
        Self {
            max_connections: limits.max_connections,
            max_connections_per_user: limits.max_connections_per_user,
            max_rooms: limits.max_rooms,
            max_payload_bytes: limits.max_payload.as_u32(),
            connection_publish: limits.connection_publish.into(),
            tenant_publish: limits.tenant_publish.into(),
        }
    }
}

impl From<core::Rate> for Rate {
    fn from(rate: core::Rate) -> Self {
        Self {
            per_sec: rate.per_sec,
            burst: rate.burst,
        }
    }
}

impl From<Rate> for core::Rate {
    fn from(rate: Rate) -> Self {
        Self {
            per_sec: rate.per_sec,
            burst: rate.burst,
        }
    }
}

/// `[limits.tenants.<id>]`: overrides for one tenant; absent keys keep `[limits.tenant_defaults]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantLimitsOverride {
    /// Open connections of the tenant.
    pub max_connections: Option<u32>,
    /// Open connections of one user of the tenant.
    pub max_connections_per_user: Option<u32>,
    /// Rooms one session may be in.
    pub max_rooms: Option<u32>,
    /// Largest publish payload.
    pub max_payload: Option<ByteSize>,
    /// Publish rate of one connection.
    pub connection_publish: Option<Rate>,
    /// Publish rate of the whole tenant.
    pub tenant_publish: Option<Rate>,
}

impl TenantLimitsOverride {
    /// `base` with this override's keys applied.
    pub fn apply(&self, base: TenantLimits) -> TenantLimits {
        TenantLimits {
            max_connections: self.max_connections.unwrap_or(base.max_connections),
            max_connections_per_user: self
                .max_connections_per_user
                .unwrap_or(base.max_connections_per_user),
            max_rooms: self.max_rooms.unwrap_or(base.max_rooms),
            max_payload: self.max_payload.unwrap_or(base.max_payload),
            connection_publish: self.connection_publish.unwrap_or(base.connection_publish),
            tenant_publish: self.tenant_publish.unwrap_or(base.tenant_publish),
        }
    }
}

/// `[limits]`: node-wide admission and per-connection buffers, tenant defaults and overrides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Open connections on this node (including those still authenticating).
    pub max_connections: u32,
    /// Upgrades accepted per second, with a burst; excess gets 503 + Retry-After.
    pub accept: Rate,
    /// Retry-After sent when a connection cap is hit.
    pub full_retry_after: Duration,
    /// Largest WebSocket frame read; larger frames are refused before allocation.
    pub max_frame: ByteSize,
    /// Outbound messages queued per connection before drops start.
    pub outbound_queue_depth: u32,
    /// Drops after which a slow consumer is closed.
    pub slow_consumer_threshold: u32,
    /// Limits of every tenant without an override.
    pub tenant_defaults: TenantLimits,
    /// Per-tenant overrides, by tenant id.
    pub tenants: BTreeMap<String, TenantLimitsOverride>,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let admission = core::AdmissionConfig::default();
        Self {
            max_connections: admission.max_connections,
            accept: admission.accept.into(),
            full_retry_after: Duration::from_millis(admission.full_retry_after_ms),
            max_frame: ByteSize::kib(64),
            outbound_queue_depth: 256,
            slow_consumer_threshold: SessionDefaults::default().slow_consumer_threshold,
            tenant_defaults: admission.default_tenant.into(),
            tenants: BTreeMap::new(),
        }
    }
}

impl LimitsConfig {
    /// The limits in force for `tenant`: the defaults with its override applied.
    pub fn for_tenant(&self, tenant: &str) -> TenantLimits {
        self.tenants
            .get(tenant)
            .map_or(self.tenant_defaults, |over| {
                over.apply(self.tenant_defaults)
            })
    }

    /// The node's admission settings for `arqon_core::limits::Admission`. Override keys that are not
    /// valid tenant ids are skipped (a checked config has none).
    pub fn admission(&self) -> core::AdmissionConfig {
        core::AdmissionConfig {
            max_connections: self.max_connections,
            accept: self.accept.into(),
            full_retry_after_ms: self.full_retry_after.as_millis(),
            default_tenant: self.tenant_defaults.into(),
            tenants: self
                .tenants
                .keys()
                .filter_map(|id| TenantId::parse(id).ok())
                .map(|id| {
                    let limits = self.for_tenant(id.as_str()).into();
                    (id, limits)
                })
                .collect(),
        }
    }
}

/// `[session]`: liveness and misbehaviour of one connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// How often clients are asked to heartbeat (sent in Welcome).
    pub heartbeat_interval: Duration,
    /// A session silent this long is closed; must exceed `heartbeat_interval`.
    pub idle_timeout: Duration,
    /// Protocol errors (undecodable frames) tolerated before the connection is closed.
    pub max_protocol_errors: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        let session = SessionDefaults::default();
        Self {
            heartbeat_interval: Duration::from_millis(u64::from(session.heartbeat_interval_ms)),
            idle_timeout: Duration::from_micros(session.heartbeat_timeout_us),
            max_protocol_errors: session.max_protocol_errors,
        }
    }
}

/// `[presence]`: replication timing of the presence CRDT.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PresenceConfig {
    /// How often a node announces itself on the spine.
    pub node_heartbeat_interval: Duration,
    /// A node silent this long is presumed dead and its members removed; must exceed the interval.
    pub node_expiry: Duration,
    /// A member whose session stops heartbeating is removed after this long.
    pub member_heartbeat_expiry: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            node_heartbeat_interval: Duration::from_secs(2),
            node_expiry: Duration::from_micros(PresenceDefaults::default().node_ttl_us),
            member_heartbeat_expiry: Duration::from_secs(60),
        }
    }
}

/// One tenant's policy chain: `[policy.tenants.<id>]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyChain {
    /// Modules (`.wasm` or `.wat`), run in order after the global chain.
    pub chain: Vec<PathBuf>,
}

/// `[policy]`: the Wasm policy chains and their sandbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Modules (`.wasm` or `.wat`) run on every publish of every tenant, in order.
    pub global: Vec<PathBuf>,
    /// Per-tenant chains, by tenant id.
    pub tenants: BTreeMap<String, PolicyChain>,
    /// Time one module may run per message; over budget blocks the message.
    pub time_budget: Duration,
    /// Linear memory one evaluation may use; over the limit blocks the message.
    pub memory_limit: ByteSize,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            global: Vec::new(),
            tenants: BTreeMap::new(),
            time_budget: Duration::from_micros(abi::DEFAULT_TIME_BUDGET_US),
            memory_limit: ByteSize::bytes(abi::DEFAULT_MEMORY_LIMIT),
        }
    }
}

/// Where the governance audit log goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A hash-chained JSON-lines file at `governance.audit_path`.
    File,
    /// A `JetStream` stream (requires `spine.kind = "nats"`).
    Jetstream,
}

/// The rollout an auto-approved proposal gets.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RolloutDefaults {
    /// Percent of traffic at the start (0–100).
    pub initial_percent: f64,
    /// Percent added per minute (> 0).
    pub increment_per_minute: f64,
    /// Cap (from `initial_percent` to 100).
    pub max_percent: f64,
}

/// `[governance]`: the control plane's rules and audit log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct GovernanceConfig {
    /// Proposals below this confidence (0–1) are rejected.
    pub min_confidence: f64,
    /// Rollouts in flight per tenant; further proposals wait.
    pub max_concurrent_rollouts_per_tenant: u32,
    /// Approve proposals that pass the rules without an operator.
    pub auto_approve: bool,
    /// The rollout auto-approved proposals get.
    pub default_rollout: RolloutDefaults,
    /// `file` or `jetstream`.
    pub audit_kind: AuditKind,
    /// The audit file (`audit_kind = "file"`).
    pub audit_path: PathBuf,
    /// The `JetStream` stream (`audit_kind = "jetstream"`).
    pub audit_stream: String,
}

impl Default for GovernanceConfig {
    fn default() -> Self {
        let rules = Rules::default();
        let percent = |bp: u32| f64::from(bp) / 100.0;
        Self {
            min_confidence: rules.min_confidence,
            max_concurrent_rollouts_per_tenant: u32::try_from(rules.max_concurrent_rollouts)
                .unwrap_or(u32::MAX),
            auto_approve: rules.auto_approve,
            default_rollout: RolloutDefaults {
                initial_percent: percent(rules.default_rollout.initial_bp),
                increment_per_minute: percent(rules.default_rollout.increment_bp_per_minute),
                max_percent: percent(rules.default_rollout.max_bp),
            },
            audit_kind: AuditKind::File,
            audit_path: PathBuf::from(".arqon/audit.jsonl"),
            audit_stream: "ARQON_AUDIT".to_owned(),
        }
    }
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Pretty,
}

/// `[telemetry]`: logs, traces and metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// `json` or `pretty`.
    pub log_format: LogFormat,
    /// A tracing filter: a level (`info`) or directives (`info,arqon_shield=debug`).
    pub log_level: String,
    /// OTLP/HTTP endpoint for traces (`http://…` or `https://…`); none exports no traces.
    pub otlp_endpoint: Option<String>,
    /// While exporting: the share (0 to 1) of publishes whose message-path spans are built, for
    /// publishes whose client sent no `traceparent` (a client's sampled flag is followed). Publishes
    /// refused with an error or blocked by a policy are always traced.
    pub trace_sample_ratio: f64,
    /// While exporting: at most this many publishes a second traced by that decision (sampled
    /// client traces included; errors and policy blocks not counted); 0 for no limit.
    pub trace_sample_max_per_sec: u32,
    /// Serve Prometheus metrics on `/metrics`.
    pub metrics: bool,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Json,
            log_level: "info".to_owned(),
            otlp_endpoint: None,
            trace_sample_ratio: 0.01,
            trace_sample_max_per_sec: 100,
            metrics: true,
        }
    }
}

/// `[admin]`: the admin API (`/v1/admin/...`) on the node's listener.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Serve the admin API (requires an `admin` role token).
    pub enabled: bool,
}

//! Range and combination checks that serde cannot express. Each finding names its key path.

use std::fmt::Display;

use arqon_proto::names::TenantId;

use crate::config::Config;
use crate::locate::KeyPath;
use crate::sections::{
    AuditKind, HISTORY_MAX_AGE, HISTORY_MAX_BYTES, HISTORY_MAX_MESSAGES, Rate, SpineKind,
    TenantLimits, TenantLimitsOverride,
};
use crate::units::{ByteSize, Duration};

/// One finding: the key at fault, where to point when that key is absent, and why.
pub(crate) struct Finding {
    pub(crate) key: KeyPath,
    pub(crate) anchor: Option<KeyPath>,
    pub(crate) reason: String,
}

/// Collected findings.
#[derive(Default)]
pub(crate) struct Findings(pub(crate) Vec<Finding>);

impl Findings {
    fn add(&mut self, key: impl Into<KeyPath>, reason: impl Into<String>) {
        self.0.push(Finding {
            key: key.into(),
            anchor: None,
            reason: reason.into(),
        });
    }

    /// A finding about an absent key, located at `anchor` when the key's parents are absent too.
    fn add_anchored(&mut self, key: &str, anchor: &str, reason: &str) {
        self.0.push(Finding {
            key: key.into(),
            anchor: Some(anchor.into()),
            reason: reason.to_owned(),
        });
    }

    fn range<T: PartialOrd + Display + Copy>(
        &mut self,
        key: impl Into<KeyPath>,
        value: T,
        min: T,
        max: T,
    ) {
        if value < min || value > max {
            self.add(key, format!("{value} is out of range {min}..={max}"));
        }
    }

    fn rate(&mut self, key: &KeyPath, rate: Rate) {
        self.range(key.clone().key("per_sec"), rate.per_sec, 1, 10_000_000);
        self.range(key.clone().key("burst"), rate.burst, 1, 10_000_000);
    }
}

const MAX_CONNECTIONS: u32 = 1_000_000;
const ONE_HOUR: Duration = Duration::from_secs(3600);

pub(crate) fn validate(config: &Config) -> Findings {
    let mut found = Findings::default();
    node_tls_auth(config, &mut found);
    spine(config, &mut found);
    history(config, &mut found);
    limits(config, &mut found);
    timing(config, &mut found);
    policy(config, &mut found);
    governance(config, &mut found);
    telemetry(config, &mut found);
    found
}

fn tenant_key(found: &mut Findings, path: KeyPath, id: &str) {
    if let Err(error) = TenantId::parse(id) {
        found.add(path, format!("{id:?} is not a valid tenant id: {error}"));
    }
}

fn node_tls_auth(config: &Config, found: &mut Findings) {
    let dev = config.node.dev;
    if let Err(error) = TenantId::parse(&config.node.id) {
        found.add(
            "node.id",
            format!("not a valid node id ([a-z0-9][a-z0-9_-]{{0,63}}): {error}"),
        );
    }
    found.range(
        "node.drain_timeout",
        config.node.drain_timeout,
        Duration::from_secs(0),
        Duration::from_secs(300),
    );
    match &config.tls {
        None if !dev => found.add_anchored(
            "tls",
            "node.dev",
            "a [tls] section with cert and key is required unless node.dev = true",
        ),
        Some(tls) => {
            for (key, path) in [("tls.cert", &tls.cert), ("tls.key", &tls.key)] {
                if path.as_os_str().is_empty() {
                    found.add(key, "must not be empty");
                }
            }
        }
        None => {}
    }
    let auth = &config.auth;
    match (&auth.jwks_file, &auth.jwks) {
        (Some(_), Some(_)) => found.add(
            "auth.jwks",
            "set either auth.jwks_file or auth.jwks, not both",
        ),
        (None, None) if !dev => found.add_anchored(
            "auth.jwks_file",
            "node.dev",
            "auth.jwks_file or auth.jwks is required unless node.dev = true",
        ),
        (_, Some(inline)) => {
            if let Err(error) = arqon_auth::Jwks::from_json(inline) {
                found.add("auth.jwks", format!("invalid JWKS: {error}"));
            }
        }
        _ => {}
    }
    for (key, value) in [
        ("auth.issuer", &auth.issuer),
        ("auth.audience", &auth.audience),
    ] {
        match value {
            None if !dev => found.add_anchored(key, "node.dev", "required unless node.dev = true"),
            Some(text) if text.trim().is_empty() => found.add(key, "must not be empty"),
            _ => {}
        }
    }
    found.range(
        "auth.leeway",
        auth.leeway,
        Duration::from_secs(0),
        Duration::from_secs(300),
    );
}

fn spine(config: &Config, found: &mut Findings) {
    let spine = &config.spine;
    match spine.kind {
        SpineKind::Nats if spine.nats_urls.is_empty() => {
            found.add(
                "spine.nats_urls",
                "at least one URL is required when spine.kind = \"nats\"",
            );
        }
        SpineKind::Embedded if !spine.nats_urls.is_empty() => {
            found.add(
                "spine.kind",
                "nats_urls are set but kind is \"embedded\"; set kind = \"nats\"",
            );
        }
        _ => {}
    }
    for (index, url) in spine.nats_urls.iter().enumerate() {
        let scheme_ok = ["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len());
        if !scheme_ok {
            found.add(
                KeyPath::from("spine.nats_urls").index(index),
                format!("{url:?} is not a nats://, tls://, ws:// or wss:// URL"),
            );
        }
    }
    found.range(
        "spine.connect_timeout",
        spine.connect_timeout,
        Duration::from_millis(100),
        Duration::from_secs(60),
    );
}

fn history(config: &Config, found: &mut Findings) {
    let history = &config.history;
    let retention = |found: &mut Findings,
                     path: KeyPath,
                     messages: Option<u64>,
                     bytes: Option<ByteSize>,
                     age: Option<Duration>| {
        if let Some(messages) = messages {
            found.range(
                path.clone().key("max_messages"),
                messages,
                1,
                HISTORY_MAX_MESSAGES,
            );
        }
        if let Some(bytes) = bytes {
            found.range(
                path.clone().key("max_bytes"),
                bytes.get(),
                1024,
                HISTORY_MAX_BYTES,
            );
        }
        if let Some(age) = age {
            found.range(
                path.key("max_age"),
                age,
                Duration::from_secs(1),
                HISTORY_MAX_AGE,
            );
        }
    };
    retention(
        found,
        KeyPath::from("history"),
        Some(history.max_messages),
        Some(history.max_bytes),
        Some(history.max_age),
    );
    found.range(
        "history.recovery_limit",
        u64::from(history.recovery_limit),
        1,
        HISTORY_MAX_MESSAGES,
    );
    found.range(
        "history.page_bytes",
        history.page_bytes.get(),
        1024,
        64 * 1024 * 1024,
    );
    found.range("history.replicas", history.replicas, 0, 5);
    for (id, over) in &history.tenants {
        let path = KeyPath::from("history.tenants").key(id);
        tenant_key(found, path.clone(), id);
        retention(found, path, over.max_messages, over.max_bytes, over.max_age);
    }
}

fn tenant_limits(found: &mut Findings, path: &KeyPath, limits: &TenantLimits, max_frame: ByteSize) {
    let key = |name: &str| path.clone().key(name);
    found.range(
        key("max_connections"),
        limits.max_connections,
        1,
        MAX_CONNECTIONS,
    );
    found.range(
        key("max_connections_per_user"),
        limits.max_connections_per_user,
        1,
        limits.max_connections.max(1),
    );
    found.range(key("max_rooms"), limits.max_rooms, 1, 10_000);
    if limits.max_payload.get() == 0 || limits.max_payload > max_frame {
        found.add(
            key("max_payload"),
            format!(
                "{} must be between 1B and limits.max_frame ({max_frame})",
                limits.max_payload
            ),
        );
    }
    found.rate(&key("connection_publish"), limits.connection_publish);
    found.rate(&key("tenant_publish"), limits.tenant_publish);
}

fn limits(config: &Config, found: &mut Findings) {
    let limits = &config.limits;
    found.range(
        "limits.max_connections",
        limits.max_connections,
        1,
        MAX_CONNECTIONS,
    );
    found.rate(&KeyPath::from("limits.accept"), limits.accept);
    found.range(
        "limits.full_retry_after",
        limits.full_retry_after,
        Duration::from_secs(1),
        ONE_HOUR,
    );
    found.range(
        "limits.max_frame",
        limits.max_frame,
        ByteSize::kib(1),
        ByteSize::mib(16),
    );
    found.range(
        "limits.outbound_queue_depth",
        limits.outbound_queue_depth,
        1,
        65_536,
    );
    found.range(
        "limits.slow_consumer_threshold",
        limits.slow_consumer_threshold,
        1,
        1_000_000,
    );
    tenant_limits(
        found,
        &KeyPath::from("limits.tenant_defaults"),
        &limits.tenant_defaults,
        limits.max_frame,
    );
    for (id, over) in &limits.tenants {
        let path = KeyPath::from("limits.tenants").key(id);
        tenant_key(found, path.clone(), id);
        if *over == TenantLimitsOverride::default() {
            found.add(path.clone(), "override sets no limit");
        }
        let resolved = over.apply(limits.tenant_defaults);
        tenant_limits(found, &path, &resolved, limits.max_frame);
    }
}

fn timing(config: &Config, found: &mut Findings) {
    let session = &config.session;
    found.range(
        "session.heartbeat_interval",
        session.heartbeat_interval,
        Duration::from_millis(100),
        Duration::from_secs(300),
    );
    if session.idle_timeout <= session.heartbeat_interval || session.idle_timeout > ONE_HOUR {
        found.add(
            "session.idle_timeout",
            format!(
                "{} must be longer than session.heartbeat_interval ({}) and at most 1h",
                session.idle_timeout, session.heartbeat_interval
            ),
        );
    }
    found.range(
        "session.max_protocol_errors",
        session.max_protocol_errors,
        1,
        1000,
    );
    let presence = &config.presence;
    found.range(
        "presence.node_heartbeat_interval",
        presence.node_heartbeat_interval,
        Duration::from_millis(100),
        Duration::from_secs(60),
    );
    let interval = presence.node_heartbeat_interval.get();
    if presence.node_expiry.get() < interval * 2 || presence.node_expiry > ONE_HOUR {
        found.add(
            "presence.node_expiry",
            format!(
                "{} must be at least twice presence.node_heartbeat_interval ({}) and at most 1h",
                presence.node_expiry, presence.node_heartbeat_interval
            ),
        );
    }
    if presence.member_heartbeat_expiry <= session.heartbeat_interval
        || presence.member_heartbeat_expiry > ONE_HOUR
    {
        found.add(
            "presence.member_heartbeat_expiry",
            format!(
                "{} must be longer than session.heartbeat_interval ({}) and at most 1h",
                presence.member_heartbeat_expiry, session.heartbeat_interval
            ),
        );
    }
}

fn policy(config: &Config, found: &mut Findings) {
    let policy = &config.policy;
    let mut chain = |path: KeyPath, modules: &[std::path::PathBuf]| {
        for (index, module) in modules.iter().enumerate() {
            let ext = module.extension().and_then(|ext| ext.to_str());
            if !matches!(ext, Some("wasm" | "wat")) {
                found.add(
                    path.clone().index(index),
                    format!("{} is not a .wasm or .wat file", module.display()),
                );
            }
        }
    };
    chain(KeyPath::from("policy.global"), &policy.global);
    for (id, tenant) in &policy.tenants {
        chain(
            KeyPath::from("policy.tenants").key(id).key("chain"),
            &tenant.chain,
        );
    }
    for id in policy.tenants.keys() {
        tenant_key(found, KeyPath::from("policy.tenants").key(id), id);
    }
    found.range(
        "policy.time_budget",
        policy.time_budget,
        Duration::from_micros(100),
        Duration::from_secs(1),
    );
    found.range(
        "policy.memory_limit",
        policy.memory_limit,
        ByteSize::kib(64),
        ByteSize::mib(1024),
    );
}

fn governance(config: &Config, found: &mut Findings) {
    let gov = &config.governance;
    if !(0.0..=1.0).contains(&gov.min_confidence) {
        found.add(
            "governance.min_confidence",
            format!("{} is out of range 0..=1", gov.min_confidence),
        );
    }
    found.range(
        "governance.max_concurrent_rollouts_per_tenant",
        gov.max_concurrent_rollouts_per_tenant,
        1,
        100,
    );
    let rollout = &gov.default_rollout;
    let percent = |value: f64| (0.0..=100.0).contains(&value);
    if !percent(rollout.initial_percent) {
        found.add(
            "governance.default_rollout.initial_percent",
            format!("{} is out of range 0..=100", rollout.initial_percent),
        );
    }
    if !(rollout.increment_per_minute > 0.0 && rollout.increment_per_minute <= 100.0) {
        found.add(
            "governance.default_rollout.increment_per_minute",
            format!(
                "{} must be above 0 and at most 100",
                rollout.increment_per_minute
            ),
        );
    }
    if !percent(rollout.max_percent) || rollout.max_percent < rollout.initial_percent {
        found.add(
            "governance.default_rollout.max_percent",
            format!(
                "{} must be between initial_percent and 100",
                rollout.max_percent
            ),
        );
    }
    match gov.audit_kind {
        AuditKind::File if gov.audit_path.as_os_str().is_empty() => {
            found.add(
                "governance.audit_path",
                "required when governance.audit_kind = \"file\"",
            );
        }
        AuditKind::Jetstream if config.spine.kind != SpineKind::Nats => {
            found.add(
                "governance.audit_kind",
                "\"jetstream\" requires spine.kind = \"nats\"",
            );
        }
        _ => {}
    }
    let stream_ok = !gov.audit_stream.is_empty()
        && gov.audit_stream.len() <= 64
        && gov
            .audit_stream
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !stream_ok {
        found.add(
            "governance.audit_stream",
            "must be 1-64 characters of [A-Za-z0-9_-]",
        );
    }
}

const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

fn telemetry(config: &Config, found: &mut Findings) {
    let telemetry = &config.telemetry;
    let directive_ok = |directive: &str| {
        let level = directive
            .rsplit_once('=')
            .map_or(directive, |(target, level)| {
                if target.is_empty()
                    || !target
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
                {
                    ""
                } else {
                    level
                }
            });
        LEVELS.contains(&level.to_ascii_lowercase().as_str())
    };
    if telemetry.log_level.trim().is_empty()
        || !telemetry
            .log_level
            .split(',')
            .all(|d| directive_ok(d.trim()))
    {
        found.add(
            "telemetry.log_level",
            format!(
                "{:?} is not a level (off, error, warn, info, debug, trace) or target=level list",
                telemetry.log_level
            ),
        );
    }
    if !(0.0..=1.0).contains(&telemetry.trace_sample_ratio) {
        found.add(
            "telemetry.trace_sample_ratio",
            format!(
                "{} is not a share between 0 and 1",
                telemetry.trace_sample_ratio
            ),
        );
    }
    if let Some(endpoint) = &telemetry.otlp_endpoint {
        let ok = ["http://", "https://"]
            .iter()
            .any(|scheme| endpoint.starts_with(scheme) && endpoint.len() > scheme.len());
        if !ok {
            found.add(
                "telemetry.otlp_endpoint",
                format!("{endpoint:?} is not an http:// or https:// URL"),
            );
        }
    }
}

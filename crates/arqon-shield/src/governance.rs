//! Governance on a Shield node: runs the Brain's [`GovernanceService`], forwards sessions'
//! governance bodies to their tenant's `gov.up`, and fans `gov.down` out to the sessions of the
//! tenant (`specs/governance.md`, "Shield and Brain").
//!
//! Nothing is decided here: the Brain's control plane authorizes every message (a refusal comes
//! back as an `Error` carrying [`TO_SESSION_HEADER`]), and which sessions get the tenant's
//! downstream messages is [`GovRole::receives_downstream`].

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use arqon_brain::audit_log::AuditStore;
use arqon_brain::governance::{ROLE_HEADER, TO_SESSION_HEADER, system_now};
use arqon_brain::governance_service::GovernanceService;
use arqon_config::{AuditKind, Config};
use arqon_core::governance::{GovRole, Rules};
use arqon_core::rollout::RolloutConfig;
use arqon_core::session::Identity;
use arqon_core::subject::Subject;
use arqon_proto::names::TenantId;
use arqon_proto::outbound::{encode_envelope, envelope};
use arqon_proto::v1::{self, envelope::Body};
use arqon_proto::{ClientHeader, GovernanceCommand, Stamp};
use arqon_spine::{Headers, Spine};
use prost::Message as _;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use tracing::Instrument as _;

use crate::clock::now_us;
use crate::error::ShieldError;
use crate::hub::Outbox;
use crate::metrics::{Metrics, inc};

/// How often the control planes advance their rollouts.
const TICK: Duration = Duration::from_secs(1);

/// Governance counters, rendered on `/metrics` as `arqonbus_governance_<what>`.
#[derive(Debug, Default)]
pub struct GovernanceMetrics {
    /// `arqonbus.governance.forwarded`: governance bodies forwarded to `gov.up`.
    pub forwarded: AtomicU64,
    /// `arqonbus.governance.forward_failures`: forwards the spine refused.
    pub forward_failures: AtomicU64,
    /// `arqonbus.governance.delivered`: `gov.down` envelopes queued to local sessions.
    pub delivered: AtomicU64,
    /// `arqonbus.governance.forbidden`: `FORBIDDEN` refusals delivered to senders.
    pub forbidden: AtomicU64,
}

impl GovernanceMetrics {
    /// The Prometheus text of these counters.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "forwarded",
                "governance bodies forwarded to gov.up",
                &self.forwarded,
            ),
            (
                "forward_failures",
                "governance forwards the spine refused",
                &self.forward_failures,
            ),
            (
                "delivered",
                "gov.down envelopes queued to local sessions",
                &self.delivered,
            ),
            (
                "forbidden",
                "FORBIDDEN refusals delivered to senders",
                &self.forbidden,
            ),
        ] {
            let _ = write!(
                out,
                "# HELP arqonbus_governance_{name} {help}\n# TYPE arqonbus_governance_{name} counter\narqonbus_governance_{name} {}\n",
                value.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// One local session on a tenant's `gov.down`.
#[derive(Clone, Debug)]
struct Member {
    outbox: Outbox,
    /// Gets the tenant's downstream messages, not only the errors addressed to it.
    downstream: bool,
}

type Members = Arc<RwLock<HashMap<String, Member>>>;

struct Fanout {
    members: Members,
    forward: JoinHandle<()>,
}

/// The node's governance: the control-plane service and the `gov.down` fan-out.
pub struct Governance {
    service: GovernanceService,
    store: AuditStore,
    spine: Arc<dyn Spine>,
    metrics: Arc<Metrics>,
    counters: Arc<GovernanceMetrics>,
    tenants: Mutex<HashMap<TenantId, Fanout>>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Governance")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

/// The control plane's rules from `[governance]`.
pub fn rules(config: &Config) -> Result<Rules, ShieldError> {
    let gov = &config.governance;
    let ramp = &gov.default_rollout;
    let default_rollout = RolloutConfig::from_percent(
        ramp.initial_percent,
        ramp.increment_per_minute,
        ramp.max_percent,
    )
    .map_err(|e| ShieldError::Governance(format!("governance.default_rollout: {e}")))?;
    Ok(Rules {
        min_confidence: gov.min_confidence,
        max_concurrent_rollouts: usize::try_from(gov.max_concurrent_rollouts_per_tenant)
            .unwrap_or(usize::MAX),
        auto_approve: gov.auto_approve,
        default_rollout,
    })
}

/// Where `[governance]` keeps the audit chains: the directory `audit_path` (one
/// `<tenant>.audit.jsonl` per tenant), or `JetStream` on the spine's NATS servers.
pub async fn audit_store(config: &Config) -> Result<AuditStore, ShieldError> {
    Ok(match config.governance.audit_kind {
        AuditKind::File => AuditStore::Dir(config.governance.audit_path.clone()),
        AuditKind::Jetstream => {
            let urls = arqon_spine::server_addrs(&config.spine.nats_urls)
                .map_err(|e| ShieldError::Governance(format!("audit JetStream: {e}")))?;
            let client = async_nats::ConnectOptions::new()
                .name(format!("{}-audit", config.node.id))
                .connection_timeout(config.spine.connect_timeout.get())
                .connect(urls)
                .await
                .map_err(|e| ShieldError::Governance(format!("audit JetStream: {e}")))?;
            AuditStore::JetStream(client)
        }
    })
}

impl Governance {
    /// The node's governance on `spine`, with the rules and audit store of `config`.
    pub(crate) async fn start(
        config: &Config,
        spine: Arc<dyn Spine>,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ShieldError> {
        let store = audit_store(config).await?;
        let mut service = GovernanceService::new(
            Arc::clone(&spine),
            store.clone(),
            rules(config)?,
            TICK,
            system_now(),
        );
        // Chains in JetStream are shared by every node: one writer per tenant, by lease.
        if let AuditStore::JetStream(client) = &store {
            let lease = arqon_core::lease::Lease::default();
            let ttl = std::time::Duration::from_micros(lease.config.ttl_us);
            let leases = arqon_brain::lease::KvLeaseStore::open(client.clone(), ttl)
                .await
                .map_err(|e| ShieldError::Governance(e.to_string()))?;
            service = service.with_lease(arqon_brain::governance_service::LeaseSettings {
                store: Arc::new(leases),
                node_id: config.node.id.clone(),
                lease,
            });
        }
        Ok(Self {
            service,
            store,
            spine,
            metrics,
            counters: Arc::new(GovernanceMetrics::default()),
            tenants: Mutex::new(HashMap::new()),
        })
    }

    /// The control-plane service (the admin API submits through it).
    pub fn service(&self) -> &GovernanceService {
        &self.service
    }

    /// The audit store (the admin API lists and verifies through it).
    pub fn store(&self) -> &AuditStore {
        &self.store
    }

    /// The governance counters.
    pub fn counters(&self) -> &GovernanceMetrics {
        &self.counters
    }

    /// Serves `tenant`'s control plane on this node (idempotent).
    pub async fn serve(&self, tenant: &TenantId) -> Result<(), ShieldError> {
        self.service
            .serve(tenant)
            .await
            .map_err(|e| ShieldError::Governance(e.to_string()))
    }

    /// Adds a session to its tenant's `gov.down` fan-out: every downstream message when its role
    /// [receives downstream](GovRole::receives_downstream), otherwise only errors addressed to it.
    /// A session already there keeps the wider of the two.
    pub(crate) async fn join(
        &self,
        tenant: &TenantId,
        session_id: &str,
        outbox: Outbox,
        role: GovRole,
    ) -> Result<(), ShieldError> {
        self.serve(tenant).await?;
        let member = Member {
            outbox,
            downstream: role.receives_downstream(),
        };
        let mut tenants = self.tenants.lock().await;
        if let Some(fanout) = tenants.get(tenant) {
            if let Ok(mut members) = fanout.members.write() {
                members.entry(session_id.to_owned()).or_insert(member);
            }
            return Ok(());
        }
        let subject = Subject::gov_down(tenant);
        let mut subscription = self.spine.subscribe(&subject).await?;
        self.spine.flush().await?;
        let members: Members = Arc::new(RwLock::new(HashMap::from([(
            session_id.to_owned(),
            member,
        )])));
        let shared = Arc::clone(&members);
        let metrics = Arc::clone(&self.metrics);
        let counters = Arc::clone(&self.counters);
        let forward = tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                let Ok(members) = shared.read() else { break };
                if let Some(to) = message.headers.get(TO_SESSION_HEADER) {
                    if let Some(member) = members.get(to) {
                        if is_forbidden(&message.payload) {
                            inc(&counters.forbidden);
                        }
                        if member.outbox.offer(message.payload.clone(), &metrics) {
                            inc(&counters.delivered);
                        }
                    }
                    continue;
                }
                for member in members.values().filter(|m| m.downstream) {
                    if member.outbox.offer(message.payload.clone(), &metrics) {
                        inc(&counters.delivered);
                    }
                }
            }
        });
        tenants.insert(tenant.clone(), Fanout { members, forward });
        Ok(())
    }

    /// Removes a session; the tenant's last local member closes the `gov.down` subscription.
    pub(crate) async fn leave(&self, tenant: &TenantId, session_id: &str) {
        let mut tenants = self.tenants.lock().await;
        let empty = tenants.get(tenant).is_some_and(|fanout| {
            fanout.members.write().is_ok_and(|mut members| {
                members.remove(session_id);
                members.is_empty()
            })
        });
        if empty && let Some(fanout) = tenants.remove(tenant) {
            fanout.forward.abort();
        }
    }

    /// Local sessions on `tenant`'s `gov.down` that get its downstream messages.
    pub async fn receivers(&self, tenant: &TenantId) -> usize {
        self.tenants
            .lock()
            .await
            .get(tenant)
            .and_then(|f| {
                f.members
                    .read()
                    .ok()
                    .map(|m| m.values().filter(|m| m.downstream).count())
            })
            .unwrap_or(0)
    }

    /// Publishes a session's governance body on its tenant's `gov.up`, stamped with the session's
    /// identity and carrying its token's role in [`ROLE_HEADER`]. The session is put on the
    /// tenant's `gov.down` first, so the control plane's answer reaches it.
    pub(crate) async fn forward(
        &self,
        from: &Sender<'_>,
        outbox: Outbox,
        header: &ClientHeader,
        body: GovernanceCommand,
    ) -> Result<(), ShieldError> {
        let role = GovRole::from_claim(from.role);
        let client_trace = header.trace.clone();
        self.join(&from.identity.tenant, from.session_id, outbox, role)
            .await?;
        let stamp = Stamp {
            tenant: &from.identity.tenant,
            user: &from.identity.user,
            session_id: from.session_id,
            timestamp_us: now_us(),
        };
        let mut fresh = 0u32;
        let header = stamp.header(header, || {
            fresh += 1;
            format!("{}-g{}-{fresh}", from.session_id, stamp.timestamp_us)
        });
        let bytes = encode_envelope(&envelope(header, body.into_body()));
        // The forward continues the client's trace, and carries it on to the writer's Brain.
        let span = tracing::info_span!(
            "shield.governance.forward",
            tenant = %from.identity.tenant,
            trace_id = tracing::field::Empty
        );
        if let Some(trace) = &client_trace {
            arqon_telemetry::trace::continue_trace(
                &span,
                Some(&trace.traceparent),
                Some(&trace.tracestate),
            );
        }
        let headers = Headers::new()
            .with(ROLE_HEADER, from.role)
            .map_err(|e| ShieldError::Governance(e.to_string()))?;
        let headers = span.in_scope(|| arqon_brain::trace_headers::with_current_trace(headers));
        let subject = Subject::gov_up(&from.identity.tenant);
        let published = self
            .spine
            .publish(&subject, headers, bytes)
            .instrument(span)
            .await;
        match published {
            Ok(()) => {
                inc(&self.counters.forwarded);
                Ok(())
            }
            Err(error) => {
                inc(&self.counters.forward_failures);
                Err(error.into())
            }
        }
    }
}

/// Who sent a governance body.
pub(crate) struct Sender<'a> {
    pub(crate) identity: &'a Identity,
    pub(crate) session_id: &'a str,
    /// The verified token's `role` claim.
    pub(crate) role: &'a str,
}

/// Whether an encoded `gov.down` envelope is a `FORBIDDEN` error.
fn is_forbidden(payload: &[u8]) -> bool {
    matches!(
        v1::Envelope::decode(payload).ok().and_then(|e| e.body),
        Some(Body::Error(error)) if error.code == v1::ErrorCode::Forbidden as i32
    )
}

impl Drop for Governance {
    fn drop(&mut self) {
        for fanout in self.tenants.get_mut().values() {
            fanout.forward.abort();
        }
    }
}

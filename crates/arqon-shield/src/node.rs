//! A Shield node: the HTTP routes, the upgrade gate (admission, then auth, then tenant caps), and
//! start / drain / shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arqon_auth::{AuthError, Jwks, Verifier};
use arqon_config::{Config, JwksSource, SpineKind};
use arqon_core::limits::{Admission, AdmissionConfig, Rate, TenantLimits, Verdict};
use arqon_core::machine::Machine;
use arqon_core::session::{
    Identity, SessionConfig, SessionEffect, SessionEvent, SessionLimits, SessionMachine,
    SessionState,
};
use arqon_proto::FrameLimits;
use arqon_proto::names::TenantId;
use arqon_spine::{EmbeddedSpine, HistoryConfig, NatsConfig, NatsSpine, Retention, Spine};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt as _;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use crate::clock::now_us;
use crate::conn::{self, Accepted};
use crate::error::ShieldError;
use crate::governance::Governance;
use crate::hooks::Hooks;
use crate::hub::Hub;
use crate::metrics::Metrics;
use crate::policy::WasmPolicy;
use crate::state::{IdentityGuard, Settings, Shared, SlotGuard};
use crate::telemetry::outcome;
use crate::tls;

/// Bytes a connection's WebSocket reader reserves (tungstenite's default is 128 KiB, which would
/// cost 1.25 GiB for 10,000 idle connections). tungstenite zero-fills this much before each read, so
/// all of it is resident on every connection; a frame larger than it is read in several chunks
/// (the buffer grows to the frame's length while it is read).
const READ_BUFFER_BYTES: usize = 2 * 1024;

/// Bytes of frames a connection's writer gathers before a syscall: a burst of small deliveries goes
/// out in one `send` (the writer flushes whenever its queue runs empty, so nothing waits for the
/// buffer to fill). Zero would write every frame with its own syscall.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;

fn core_rate(rate: arqon_config::Rate) -> Rate {
    Rate {
        per_sec: rate.per_sec,
        burst: rate.burst,
    }
}

fn core_tenant_limits(limits: arqon_config::TenantLimits) -> TenantLimits {
    TenantLimits {
        max_connections: limits.max_connections,
        max_connections_per_user: limits.max_connections_per_user,
        max_rooms: limits.max_rooms,
        max_payload_bytes: limits.max_payload.as_u32(),
        connection_publish: core_rate(limits.connection_publish),
        tenant_publish: core_rate(limits.tenant_publish),
    }
}

/// The core admission settings for a configuration.
pub fn admission_config(config: &Config) -> AdmissionConfig {
    let limits = &config.limits;
    AdmissionConfig {
        max_connections: limits.max_connections,
        accept: core_rate(limits.accept),
        full_retry_after_ms: limits.full_retry_after.as_millis(),
        default_tenant: core_tenant_limits(limits.tenant_defaults),
        tenants: limits
            .tenants
            .keys()
            .filter_map(|id| {
                let tenant = TenantId::parse(id).ok()?;
                Some((tenant, core_tenant_limits(limits.for_tenant(id))))
            })
            .collect(),
    }
}

/// The Session machine's settings for a configuration.
pub fn session_config(config: &Config) -> SessionConfig {
    SessionConfig {
        heartbeat_timeout_us: config.session.idle_timeout.as_micros(),
        heartbeat_interval_ms: u32::try_from(config.session.heartbeat_interval.as_millis())
            .unwrap_or(u32::MAX),
        max_protocol_errors: config.session.max_protocol_errors,
        slow_consumer_threshold: config.limits.slow_consumer_threshold,
    }
}

fn load_verifier(config: &Config) -> Result<Verifier, ShieldError> {
    let keys = |e: &dyn std::fmt::Display| ShieldError::Keys(e.to_string());
    let jwks = match config.jwks_source() {
        JwksSource::File(path) => Jwks::from_file(&path).map_err(|e| keys(&e))?,
        JwksSource::Inline(text) => Jwks::from_json(&text).map_err(|e| keys(&e))?,
        JwksSource::DevKeys(dir) => {
            let (dev, _) = arqon_auth::DevKeys::load_or_generate(&dir).map_err(|e| keys(&e))?;
            dev.to_jwks().map_err(|e| keys(&e))?
        }
    };
    Ok(Verifier::new(jwks, config.verifier_settings()))
}

/// The spine's history settings from `[history]`.
pub fn history_config(config: &Config) -> HistoryConfig {
    let history = &config.history;
    let base = Retention {
        max_messages: history.max_messages,
        max_bytes: history.max_bytes.get(),
        max_age: history.max_age.get(),
    };
    let tenants = history
        .tenants
        .iter()
        .filter_map(|(id, over)| {
            let tenant = TenantId::parse(id).ok()?;
            let retention = Retention {
                max_messages: over.max_messages.unwrap_or(base.max_messages),
                max_bytes: over
                    .max_bytes
                    .map_or(base.max_bytes, arqon_config::ByteSize::get),
                max_age: over
                    .max_age
                    .map_or(base.max_age, arqon_config::Duration::get),
            };
            let enabled = over.enabled.unwrap_or(history.enabled);
            Some((tenant, enabled.then_some(retention)))
        })
        .collect();
    HistoryConfig {
        default: history.enabled.then_some(base),
        tenants,
        replicas: usize::from(history.replicas),
    }
}

/// Connects the spine the configuration asks for.
pub async fn connect_spine(config: &Config) -> Result<Arc<dyn Spine>, ShieldError> {
    Ok(match config.spine.kind {
        SpineKind::Embedded => Arc::new(EmbeddedSpine::with_history(
            arqon_spine::DEFAULT_CAPACITY,
            history_config(config),
        )),
        SpineKind::Nats => {
            let mut nats = NatsConfig::new(config.spine.nats_urls.iter().cloned());
            nats.name = Some(config.node.id.clone());
            nats.connect_timeout = config.spine.connect_timeout.get();
            nats.history = history_config(config);
            Arc::new(NatsSpine::connect(&nats).await?)
        }
    })
}

/// The node's metrics, with the trace sampler and its budget when traces are exported.
fn metrics_for(config: &Config, now: u64) -> Metrics {
    let mut metrics = Metrics::default();
    // Sampling applies to exported traces; spans built for `debug` logs are never sampled.
    if config.telemetry.otlp_endpoint.is_some() {
        let telemetry = &config.telemetry;
        metrics.obs.sampler = Some(arqon_core::sampling::TraceSampler::new(
            telemetry.trace_sample_ratio,
        ));
        metrics.obs.trace_budget = std::sync::Mutex::new(Some(
            arqon_core::sampling::TraceBudget::new(telemetry.trace_sample_max_per_sec, now),
        ));
    }
    metrics
}

/// A running Shield node.
pub struct Node {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: JoinHandle<()>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl Node {
    /// Starts a node from its configuration: spine from `[spine]`, the policy chains of `[policy]`,
    /// no presence (the Brain passes its hook through [`Node::start_with`]).
    pub async fn start(config: Config) -> Result<Self, ShieldError> {
        let spine = connect_spine(&config).await?;
        let mut hooks = Hooks::default();
        if let Some(policy) = WasmPolicy::for_node(&config)? {
            hooks.policy = Arc::new(policy);
        }
        Self::start_with(config, spine, hooks).await
    }

    /// Starts a node on a given spine with given hooks (presence, policy).
    pub async fn start_with(
        config: Config,
        spine: Arc<dyn Spine>,
        hooks: Hooks,
    ) -> Result<Self, ShieldError> {
        // A config built in code gets the same checks as a file: without them a non-dev config with
        // no JWKS would fall back to dev keys (fail open).
        config
            .check()
            .map_err(|error| ShieldError::Config(error.to_string()))?;
        let verifier = load_verifier(&config)?;
        let now = now_us();
        let max_frame = config.limits.max_frame.as_usize();
        let metrics = Arc::new(metrics_for(&config, now));
        let (drain, _) = watch::channel(None);
        let governance =
            Arc::new(Governance::start(&config, Arc::clone(&spine), Arc::clone(&metrics)).await?);
        let shared = Arc::new(Shared {
            settings: Settings {
                node_id: config.node.id.clone(),
                frame_limits: FrameLimits {
                    max_frame_bytes: max_frame,
                    // The Session machine judges the payload against the tenant's limit.
                    max_payload_bytes: max_frame,
                },
                outbound_queue: usize::try_from(config.limits.outbound_queue_depth.max(1))
                    .unwrap_or(256),
                drain_timeout: config.node.drain_timeout.get(),
                reconnect_after: Duration::from_millis(100),
                leeway_us: config.auth.leeway.as_micros(),
                recovery_limit: usize::try_from(config.history.recovery_limit).unwrap_or(10_000),
                page_bytes: config.history.page_bytes.as_usize(),
            },
            machine: SessionMachine {
                config: session_config(&config),
            },
            verifier,
            admission: Mutex::new(Admission::new(admission_config(&config), now)),
            presence: crate::presence::NodePresence::start(&config, Arc::clone(&spine)),
            hub: Arc::new(Hub::new(spine, Arc::clone(&metrics))),
            metrics,
            hooks,
            drain,
            governance,
            draining: AtomicBool::new(false),
            sessions: AtomicU64::new(0),
            sessions_gone: Notify::new(),
            next_session: AtomicU64::new(session_seed(&config.node.id, now)),
        });
        shared.presence.bind(&shared.hub);
        let mut router = Router::new()
            .route("/v1/socket", get(socket))
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(readyz));
        if config.telemetry.metrics {
            router = router.route("/metrics", get(metrics_text));
        }
        if config.admin.enabled {
            router = router.merge(crate::admin::router(Arc::clone(&shared)));
        }
        let router = router.with_state(Arc::clone(&shared));
        let listener = bind_listener(config.node.listen).map_err(|source| ShieldError::Bind {
            addr: config.node.listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ShieldError::Bind {
            addr: config.node.listen,
            source,
        })?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        };
        let server = match &config.tls {
            Some(files) => {
                let listener = tls::TlsListener::new(listener, tls::acceptor(files)?);
                tokio::spawn(async move {
                    let _ = axum::serve(listener, router)
                        .with_graceful_shutdown(shutdown)
                        .await;
                })
            }
            None => tokio::spawn(async move {
                // Small frames must leave at once: Nagle would hold a delivery back until the
                // client's delayed ACK.
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                let _ = axum::serve(listener, router)
                    .with_graceful_shutdown(shutdown)
                    .await;
            }),
        };
        tracing::info!(node = %config.node.id, %addr, tls = config.tls.is_some(), "shield listening");
        Ok(Self {
            shared,
            addr,
            tls: config.tls.is_some(),
            stop: Some(stop),
            server,
        })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://…/v1/socket` (or `wss://` with TLS).
    pub fn socket_url(&self) -> String {
        let scheme = if self.tls { "wss" } else { "ws" };
        format!("{scheme}://{}/v1/socket", self.addr)
    }

    /// The node's metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Every member of a tenant's room, on every node, as this node's presence sees it.
    pub async fn presence_members(
        &self,
        tenant: &TenantId,
        room: &arqon_proto::names::RoomName,
    ) -> Vec<arqon_core::presence::Member> {
        self.shared.presence.driver().members(tenant, room).await
    }

    /// The node's governance (control plane, audit store, `gov.down` fan-out).
    pub fn governance(&self) -> &Arc<Governance> {
        &self.shared.governance
    }

    /// Open sessions (upgrades in progress included).
    pub fn open_sessions(&self) -> u64 {
        self.shared.sessions.load(Ordering::Acquire)
    }

    /// Local members of a tenant's room on this node (0 when it holds no subscription).
    pub async fn room_members(
        &self,
        tenant: &TenantId,
        room: &arqon_proto::names::RoomName,
    ) -> usize {
        let subject = arqon_core::subject::Subject::room(tenant, room);
        self.shared.hub.local_members(&subject).await
    }

    /// Serves until SIGTERM or Ctrl-C, then drains with [`Node::shutdown`].
    pub async fn run_until_signal(self) {
        wait_for_signal().await;
        tracing::info!("termination signal: draining");
        self.shutdown().await;
    }

    /// Graceful drain: refuse new upgrades (503), fail `/readyz`, send `Drain` to every session,
    /// wait for them to leave (each is closed at the drain deadline), flush the spine, stop.
    pub async fn shutdown(mut self) {
        let shared = Arc::clone(&self.shared);
        shared.draining.store(true, Ordering::Release);
        if let Ok(mut admission) = shared.admission.lock() {
            admission.start_draining();
        }
        let timeout = shared.settings.drain_timeout;
        let deadline_us =
            now_us().saturating_add(u64::try_from(timeout.as_micros()).unwrap_or(u64::MAX));
        shared.drain.send_replace(Some(deadline_us));
        let all_gone = async {
            loop {
                let gone = shared.sessions_gone.notified();
                if shared.sessions.load(Ordering::Acquire) == 0 {
                    break;
                }
                gone.await;
            }
        };
        if tokio::time::timeout(timeout + Duration::from_secs(3), all_gone)
            .await
            .is_err()
        {
            tracing::warn!("drain deadline passed with sessions still open");
        }
        let _ = shared.hub.spine().flush().await;
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if tokio::time::timeout(Duration::from_secs(5), &mut self.server)
            .await
            .is_err()
        {
            self.server.abort();
        }
        tracing::info!("shield stopped");
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// A session-id start unique per node and start time, so ids from different nodes do not collide.
fn session_seed(node_id: &str, now_us: u64) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    node_id.hash(&mut hasher);
    now_us.hash(&mut hasher);
    hasher.finish() & 0xffff_ffff_0000_0000
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let connected = shared.hub.spine().status().connected;
    if connected && !shared.draining.load(Ordering::Acquire) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics_text(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        shared.metrics.render()
            + &shared.governance.counters().render()
            + &shared
                .hooks
                .policy
                .wasm()
                .map(WasmPolicy::render_metrics)
                .unwrap_or_default(),
    )
        .into_response()
}

fn unavailable(retry_after_ms: u64) -> Response {
    let secs = retry_after_ms.div_ceil(1000).max(1);
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, "try again later").into_response();
    if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// `GET /v1/socket`: node admission, token, tenant caps, then the upgrade.
async fn socket(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => return rejection.into_response(),
    };
    let now = now_us();
    let started_at = std::time::Instant::now();
    let _connect = crate::telemetry::connect_span().entered();
    let verdict = shared
        .admission
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .admit_connection(now);
    if let Verdict::Reject {
        retry_after_ms,
        reason,
    } = verdict
    {
        shared.metrics.admission_rejections.inc(reason.as_str());
        shared
            .metrics
            .obs
            .connect(outcome::REJECTED, reason.as_str());
        return unavailable(retry_after_ms);
    }
    shared.sessions.fetch_add(1, Ordering::AcqRel);
    let slot = SlotGuard(Arc::clone(&shared));

    let machine = shared.machine;
    let Ok(started) = machine.step(
        &SessionState::Connecting,
        &SessionEvent::Upgrade { now_us: now },
    ) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let (event, identity, identity_guard, role) = authenticate(&shared, &headers, now);
    let Ok(step) = machine.step(&started.state, &event) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut effects = step.effects.into_iter();
    match (effects.next(), identity) {
        (Some(SessionEffect::AcceptUpgrade), Some(identity)) => {
            let max_frame = shared.settings.frame_limits.max_frame_bytes;
            shared.metrics.obs.connected(identity.tenant.as_str());
            // A client that offers `arqon.v1.batch` takes batch frames; it is echoed first.
            let upgrade =
                upgrade.protocols([arqon_auth::SUBPROTOCOL_BATCH, arqon_auth::SUBPROTOCOL]);
            let batch = upgrade.selected_protocol().map(HeaderValue::as_bytes)
                == Some(arqon_auth::SUBPROTOCOL_BATCH.as_bytes());
            let accepted = Accepted {
                identity,
                role,
                state: step.state,
                effects: effects.collect(),
                slot,
                identity_guard,
                batch,
            };
            let driver = Arc::clone(&shared);
            upgrade
                .max_message_size(max_frame)
                .max_frame_size(max_frame)
                .read_buffer_size(READ_BUFFER_BYTES)
                .write_buffer_size(WRITE_BUFFER_BYTES)
                .on_upgrade(move |socket| {
                    driver.metrics.obs.handshake.observe(started_at.elapsed());
                    conn::run(driver, socket, accepted)
                })
        }
        (
            Some(SessionEffect::RejectUpgrade {
                status,
                reason,
                retry_after_ms,
            }),
            _,
        ) => {
            if status == 401 {
                shared.metrics.auth_failures.inc(reason);
                shared.metrics.obs.connect(outcome::UNAUTHORIZED, reason);
                tracing::info!(reason, "upgrade refused: unauthorized");
                StatusCode::UNAUTHORIZED.into_response()
            } else {
                shared.metrics.admission_rejections.inc(reason);
                shared.metrics.obs.connect(outcome::REJECTED, reason);
                unavailable(retry_after_ms.unwrap_or(1000))
            }
        }
        _ => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// Verifies the token on the upgrade request and applies the tenant/user caps: the event for the
/// Session machine, the identity when the token verified, the held tenant/user counts, and the
/// token's role claim (empty when it did not verify).
fn authenticate(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    now: u64,
) -> (SessionEvent, Option<Identity>, IdentityGuard, &'static str) {
    let header_text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let verified = arqon_auth::extract_token(
        header_text(header::AUTHORIZATION),
        header_text(header::SEC_WEBSOCKET_PROTOCOL),
    )
    .and_then(|presented| shared.verifier.verify(presented.token, now / 1_000_000));
    let mut identity_guard = IdentityGuard(None);
    let mut identity = None;
    let mut role = "";
    let event = match verified {
        Ok(claims) => {
            role = claims.role.as_str();
            // A poisoned lock still holds valid counts: take the guard (admitting would fail open).
            let admission = shared
                .admission
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .admit_identity(&claims.tenant, &claims.sub);
            if admission == Verdict::Admit {
                identity_guard = IdentityGuard(Some((
                    Arc::clone(shared),
                    claims.tenant.clone(),
                    claims.sub.clone(),
                )));
            }
            let limits = shared.limits_for(&claims.tenant);
            let who = Identity {
                tenant: claims.tenant,
                user: claims.sub,
                session: shared.next_session.fetch_add(1, Ordering::Relaxed),
            };
            identity = Some(who.clone());
            SessionEvent::TokenValid {
                identity: who,
                expires_us: shared.expiry_us(claims.exp),
                limits: SessionLimits {
                    max_rooms: limits.max_rooms,
                    max_payload_bytes: limits.max_payload_bytes,
                    publish: limits.connection_publish,
                },
                admission,
                now_us: now,
            }
        }
        Err(AuthError::Expired { .. }) => SessionEvent::TokenExpired,
        Err(error) => SessionEvent::TokenInvalid {
            reason: error.reason(),
        },
    };
    (event, identity, identity_guard, role)
}

/// Accept queue of the listener: a connect storm queues here instead of retrying SYNs after a
/// second (the kernel caps it at `net.core.somaxconn`).
const LISTEN_BACKLOG: u32 = 4096;

/// Binds the node's listener with [`LISTEN_BACKLOG`].
fn bind_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

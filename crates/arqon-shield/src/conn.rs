//! The session driver: one task per WebSocket that feeds socket events to the Session machine and
//! executes the effects it returns. It decides nothing itself.
//!
//! A separate writer task owns the socket's sink and drains the bounded outbound queue, so a
//! client that stops reading blocks only its writer; the hub and this driver only ever `try_send`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use arqon_core::machine::Machine;
use arqon_core::session::{
    ErrorCode, Identity, RefreshOutcome, SessionEffect, SessionEvent, SessionState,
};
use arqon_core::subject::Subject;
use arqon_proto::v1::{self, Limits};
use arqon_proto::{ClientCommand, ClientEnvelope, ClientHeader, Frame, ProtocolError, outbound};
use axum::extract::ws::{Message, WebSocket};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesOrdered;
use tokio::sync::oneshot;
use tokio::time::Instant;
use tracing::Instrument as _;

use crate::clock::now_us;
use crate::hooks::{PresenceHook as _, PresenceMember};
use crate::hub::{Outbox, SlowSignal};
use crate::metrics::{dec, inc};
use crate::state::{IdentityGuard, Shared, SlotGuard};

mod publish;
mod recovery;
mod storing;
mod traces;
mod writer;

use writer::write_loop;

/// A publish's answer, sent once the spine has stored it: the ack, or an `INTERNAL` error.
struct Storing {
    result: Result<(), arqon_spine::SpineError>,
    ack: Bytes,
    error: Bytes,
}

/// Publishes of one session whose store receipts may be awaited at once (then the session waits).
const MAX_STORING: usize = 256;

/// How long a closing session waits for its writer to flush before dropping the socket.
const WRITER_GRACE: Duration = Duration::from_secs(2);

/// What the upgrade handler hands to the driver.
pub(crate) struct Accepted {
    pub(crate) identity: Identity,
    /// The token's `role` claim.
    pub(crate) role: &'static str,
    pub(crate) state: SessionState,
    pub(crate) effects: Vec<SessionEffect>,
    pub(crate) slot: SlotGuard,
    pub(crate) identity_guard: IdentityGuard,
    /// The client offered `arqon.v1.batch`: the writer may send several envelopes in one frame.
    pub(crate) batch: bool,
}

/// The frame being handled, kept so replies can echo its ids and a publish can carry its payload.
struct Current {
    request: u64,
    header: ClientHeader,
    publish: Option<(Bytes, String)>,
    nonce: u64,
    /// A join's presence metadata (JSON text).
    presence_meta: Option<String>,
    /// A `PresenceRequest`'s page size and continuation token.
    presence_page: (u32, Option<String>),
    /// Why the frame was refused at decode (the `ProtocolError`'s text, never a token or payload).
    refusal: Option<String>,
    /// A `HistoryRequest`'s query.
    history: Option<arqon_proto::HistoryQuery>,
}

struct Driver {
    shared: Arc<Shared>,
    state: SessionState,
    identity: Identity,
    /// Boxed `str`, not `String`: 8 bytes less in every session's task (with `published_to`, the
    /// task's allocation stays in its size class; idle memory per connection, `BENCHMARKS.md`).
    session_id: Box<str>,
    outbox: Outbox,
    next_tick_us: Option<u64>,
    /// Boxed: it outlives its frame, and inline it would grow every idle session's task.
    current: Option<Box<Current>>,
    requests: u64,
    sent: u64,
    close_code: Option<u16>,
    /// The token's `role` claim (governance forwards it).
    role: &'static str,
    /// A governance body read from the current frame, forwarded once the machine stepped it.
    /// Boxed, as `held`: rare, and inline they would grow every idle session's task.
    governance: Option<Box<arqon_proto::GovernanceCommand>>,
    /// A history page read for the machine, held until it decides what to send.
    held: Option<Box<crate::history::Held>>,
    /// The publish just sent, until its ack is queued behind its store receipt.
    unstored: Option<(u64, arqon_spine::Receipt)>,
    /// A publish the spine refused at once: the error answered it, so no ack follows.
    refused: Option<u64>,
    /// Acks waiting for their publishes to be stored, in publish order.
    /// Made at the first publish that waits: an idle session holds no queue.
    storing: Option<FuturesOrdered<BoxFuture<'static, Storing>>>,
    /// The current publish, when the trace sampler dropped it: its spans are made late only if it
    /// ends in an error or a policy block.
    untraced: Option<Untraced>,
    /// The subject of the room last published to: a session mostly publishes to one room, and
    /// the subject's text is formatted once rather than for every publish.
    published_to: Option<Subject>,
}

/// A publish the trace sampler dropped (see [`arqon_core::sampling`]).
struct Untraced {
    request: u64,
    room: arqon_proto::names::RoomName,
    bytes: usize,
    started: std::time::Instant,
}

/// Runs one session until it is closed.
pub(crate) async fn run(shared: Arc<Shared>, socket: WebSocket, accepted: Accepted) {
    let Accepted {
        identity,
        role,
        state,
        effects,
        slot,
        identity_guard,
        batch,
    } = accepted;
    let (sink, mut stream) = socket.split();
    let (queue, outbound) = flume::bounded(shared.settings.outbound_queue);
    let slow = Arc::new(SlowSignal::default());
    let (close_tx, close_rx) = oneshot::channel();
    let batch = batch.then(|| Arc::clone(&shared.metrics));
    let mut writer = tokio::spawn(write_loop(sink, outbound, close_rx, batch));
    inc(&shared.metrics.connections_open);
    inc(&shared.metrics.connections_accepted);
    let mut drain = shared.drain.subscribe();
    let mut driver = Driver {
        session_id: format!("{:016x}", identity.session).into_boxed_str(),
        shared: Arc::clone(&shared),
        state,
        identity,
        outbox: Outbox {
            queue,
            slow: Arc::clone(&slow),
        },
        next_tick_us: None,
        current: None,
        requests: 0,
        sent: 0,
        close_code: None,
        role,
        governance: None,
        held: None,
        unstored: None,
        refused: None,
        storing: None,
        untraced: None,
        published_to: None,
    };
    // On the tenant's gov.down before the Welcome goes out, so nothing sent after it is missed.
    let governance = Arc::clone(&shared.governance);
    let gov_role = arqon_core::governance::GovRole::from_claim(role);
    if gov_role.receives_downstream()
        && let Err(error) = Box::pin(governance.join(
            &driver.identity.tenant,
            &driver.session_id,
            driver.outbox.clone(),
            gov_role,
        ))
        .await
    {
        tracing::warn!(session = %driver.session_id, %error, "governance subscription failed");
    }
    Box::pin(driver.execute_all(effects)).await;
    let already = *drain.borrow_and_update();
    if let Some(deadline_us) = already {
        Box::pin(driver.step(SessionEvent::Drain { deadline_us })).await;
    }
    serve(&mut driver, &mut stream, &slow, &mut drain).await;
    driver.settle().await;
    if let SessionState::Closed { reason } = &driver.state {
        shared.metrics.sessions_closed.inc(reason.as_str());
        tracing::info!(session = %driver.session_id, reason = reason.as_str(), "session closed");
    }
    dec(&shared.metrics.connections_open);
    Box::pin(governance.leave(&driver.identity.tenant, &driver.session_id)).await;
    let _ = close_tx.send(driver.close_code);
    drop(driver);
    drop(stream);
    if tokio::time::timeout(WRITER_GRACE, &mut writer)
        .await
        .is_err()
    {
        writer.abort();
    }
    drop(identity_guard);
    drop(slot);
}

/// Steps the session on every wake-up until it is closed: a frame, its tick, a stored publish, drops
/// for slowness, or a drain.
async fn serve(
    driver: &mut Driver,
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    slow: &SlowSignal,
    drain: &mut tokio::sync::watch::Receiver<Option<u64>>,
) {
    // The work a wake-up does (stepping the machine, running its effects) is a large future; it is
    // boxed for the moment it runs, so an idle session's task holds only this small loop.
    // One timer for the session's life, moved only when the machine schedules a new tick (rarely:
    // at the heartbeat interval), not registered again for every frame.
    let tick = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(tick);
    let mut armed: Option<u64> = None;
    while !matches!(driver.state, SessionState::Closed { .. }) {
        if driver.next_tick_us != armed {
            armed = driver.next_tick_us;
            if let Some(at_us) = armed {
                tick.as_mut().reset(instant_at(at_us));
            }
        }
        tokio::select! {
            frame = stream.next() => Box::pin(driver.on_frame(frame)).await,
            () = &mut tick, if armed.is_some() => {
                driver.next_tick_us = None;
                armed = None;
                Box::pin(driver.step(SessionEvent::Tick { now_us: now_us() })).await;
            }
            Some(done) = driver.next_stored(), if driver.storing_any() => driver.stored(done),
            drops = slow.wait() => {
                for _ in 0..drops {
                    Box::pin(driver.step(SessionEvent::SlowConsumer)).await;
                }
            }
            Ok(()) = drain.changed() => {
                let deadline = *drain.borrow_and_update();
                if let Some(deadline_us) = deadline {
                    Box::pin(driver.step(SessionEvent::Drain { deadline_us })).await;
                }
            }
        }
    }
}

/// The monotonic instant matching a wall-clock time in µs.
fn instant_at(at_us: u64) -> Instant {
    Instant::now() + Duration::from_micros(at_us.saturating_sub(now_us()))
}

/// Maps a decoder refusal to the session's error code.
fn protocol_code(error: &ProtocolError) -> ErrorCode {
    match error.code() {
        v1::ErrorCode::TextFrame => ErrorCode::TextFrame,
        v1::ErrorCode::FrameTooLarge => ErrorCode::FrameTooLarge,
        v1::ErrorCode::UnsupportedVersion => ErrorCode::UnsupportedVersion,
        v1::ErrorCode::InvalidRoom => ErrorCode::InvalidRoom,
        v1::ErrorCode::PayloadTooLarge => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::ProtocolError,
    }
}

/// Maps the session's error code to the wire's.
pub(crate) fn wire_code(code: ErrorCode) -> v1::ErrorCode {
    match code {
        ErrorCode::ProtocolError => v1::ErrorCode::ProtocolError,
        ErrorCode::TextFrame => v1::ErrorCode::TextFrame,
        ErrorCode::FrameTooLarge => v1::ErrorCode::FrameTooLarge,
        ErrorCode::UnsupportedVersion => v1::ErrorCode::UnsupportedVersion,
        ErrorCode::InvalidRoom => v1::ErrorCode::InvalidRoom,
        ErrorCode::NotInRoom => v1::ErrorCode::NotInRoom,
        ErrorCode::RoomLimit => v1::ErrorCode::RoomLimit,
        ErrorCode::PayloadTooLarge => v1::ErrorCode::PayloadTooLarge,
        ErrorCode::RateLimited => v1::ErrorCode::RateLimited,
        ErrorCode::TokenExpired => v1::ErrorCode::TokenExpired,
        ErrorCode::TokenInvalid => v1::ErrorCode::TokenInvalid,
        ErrorCode::Forbidden => v1::ErrorCode::Forbidden,
        ErrorCode::PolicyBlocked => v1::ErrorCode::PolicyBlocked,
        ErrorCode::PolicyTrap => v1::ErrorCode::PolicyTrap,
        ErrorCode::PolicyTimeout => v1::ErrorCode::PolicyTimeout,
        ErrorCode::PolicyMemory => v1::ErrorCode::PolicyMemory,
        ErrorCode::PolicyAbi => v1::ErrorCode::PolicyAbi,
        ErrorCode::PolicyLoad => v1::ErrorCode::PolicyLoad,
        ErrorCode::ServerDraining => v1::ErrorCode::ServerDraining,
        ErrorCode::HistoryUnavailable => v1::ErrorCode::HistoryUnavailable,
    }
}

/// True when a read failed because the frame exceeded the transport's size limits.
fn is_capacity(error: &axum::Error) -> bool {
    use std::error::Error as _;
    use tokio_tungstenite::tungstenite::Error as WsError;
    error
        .source()
        .and_then(|source| source.downcast_ref::<WsError>())
        .is_some_and(|inner| matches!(inner, WsError::Capacity(_)))
}

impl Driver {
    /// Steps `event` and every event its effects lead to (a policy verdict), in order.
    async fn step(&mut self, event: SessionEvent) {
        let mut pending = VecDeque::from([event]);
        while let Some(event) = pending.pop_front() {
            match self.shared.machine.step(&self.state, &event) {
                Ok(step) => {
                    self.state = step.state;
                    for effect in step.effects {
                        if let Some(next) = self.execute(effect).await {
                            pending.push_back(next);
                        }
                    }
                }
                Err(rejection) => {
                    tracing::debug!(session = %self.session_id, %rejection, "event refused");
                }
            }
        }
    }

    async fn execute_all(&mut self, effects: Vec<SessionEffect>) {
        for effect in effects {
            if let Some(next) = self.execute(effect).await {
                self.step(next).await;
            }
        }
    }

    async fn on_frame(&mut self, frame: Option<Result<Message, axum::Error>>) {
        let now_us = now_us();
        let event = match frame {
            Some(Err(error)) if is_capacity(&error) => {
                inc(&self.shared.metrics.protocol_errors);
                SessionEvent::ProtocolError {
                    code: ErrorCode::FrameTooLarge,
                    request: None,
                    now_us,
                }
            }
            None | Some(Err(_) | Ok(Message::Close(_))) => SessionEvent::SocketClosed,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return,
            Some(Ok(Message::Text(_))) => self.decoded(&Frame::Text, now_us),
            Some(Ok(Message::Binary(bytes))) => self.decoded(&Frame::Binary(bytes), now_us),
        };
        self.untraced = None;
        let span = self.publish_span(&event);
        self.step(event).instrument(span).await;
        // A body the machine did not forward (a draining session) is dropped with its refusal.
        self.governance = None;
    }

    /// Hands a governance body to the node's governance, which publishes it on `gov.up`.
    async fn forward_governance(&mut self, body: arqon_proto::GovernanceCommand) {
        let header = self
            .current
            .as_ref()
            .map(|current| current.header.clone())
            .unwrap_or_default();
        let request = self.current.as_ref().map(|current| current.request);
        let sender = crate::governance::Sender {
            identity: &self.identity,
            session_id: &self.session_id,
            role: self.role,
        };
        let forwarded = self
            .shared
            .governance
            .forward(&sender, self.outbox.clone(), &header, body)
            .await;
        if let Err(error) = forwarded {
            tracing::warn!(session = %self.session_id, %error, "governance forward failed");
            self.send_error(v1::ErrorCode::Internal, request, None);
        }
    }

    fn decoded(&mut self, frame: &Frame, now_us: u64) -> SessionEvent {
        inc(&self.shared.metrics.frames_in);
        self.requests += 1;
        let request = self.requests;
        let limits = &self.shared.settings.frame_limits;
        match arqon_proto::decode_client_frame(frame.clone(), limits) {
            Ok(envelope) => self.command(request, envelope, now_us),
            Err(error) => {
                inc(&self.shared.metrics.protocol_errors);
                tracing::debug!(session = %self.session_id, kind = error.kind(), "frame refused");
                // The header, when it can still be read, lets the refusal answer its request.
                self.current = arqon_proto::refused_header(frame, limits).map(|header| {
                    Box::new(Current {
                        request,
                        header,
                        publish: None,
                        nonce: 0,
                        presence_meta: None,
                        presence_page: (0, None),
                        refusal: Some(error.to_string()),
                        history: None,
                    })
                });
                SessionEvent::ProtocolError {
                    code: protocol_code(&error),
                    request: self.current.as_ref().map(|current| current.request),
                    now_us,
                }
            }
        }
    }

    fn command(&mut self, request: u64, envelope: ClientEnvelope, now_us: u64) -> SessionEvent {
        let mut current = Current {
            request,
            header: envelope.header,
            publish: None,
            nonce: 0,
            presence_meta: None,
            presence_page: (0, None),
            refusal: None,
            history: None,
        };
        let event = match envelope.command {
            ClientCommand::Join {
                room,
                metadata,
                since,
            } => {
                current.presence_meta = crate::presence::meta_text(&metadata);
                let recovering = u64::from(since.is_some());
                crate::metrics::add(&self.shared.metrics.recoveries, recovering);
                SessionEvent::Join {
                    room,
                    request,
                    since,
                    now_us,
                }
            }
            ClientCommand::History { room, query } => {
                current.history = Some(query);
                SessionEvent::HistoryRequest {
                    room,
                    request,
                    now_us,
                }
            }
            ClientCommand::Leave { room } => SessionEvent::Leave {
                room,
                request,
                now_us,
            },
            ClientCommand::Publish {
                room,
                payload,
                content_type,
            } => {
                let payload_len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
                current.publish = Some((payload, content_type));
                SessionEvent::Publish {
                    room,
                    request,
                    payload_len,
                    now_us,
                }
            }
            ClientCommand::Ping { nonce } => {
                current.nonce = nonce;
                SessionEvent::Heartbeat { request, now_us }
            }
            ClientCommand::Heartbeat | ClientCommand::Pong { .. } | ClientCommand::Ack { .. } => {
                SessionEvent::Heartbeat { request, now_us }
            }
            ClientCommand::PresenceRequest {
                room,
                page_size,
                page_token,
            } => {
                current.presence_page = (page_size, page_token);
                SessionEvent::PresenceRequest {
                    room,
                    request,
                    now_us,
                }
            }
            ClientCommand::Governance(body) => {
                // The Brain's control plane authorizes it and answers; the Shield only forwards.
                self.governance = Some(Box::new(body));
                SessionEvent::Governance { request, now_us }
            }
            ClientCommand::Refresh { token } => self.refresh_event(&token, request, now_us),
        };
        self.current = Some(Box::new(current));
        event
    }

    /// The `Refresh` event for a token: verified here, decided by the machine.
    fn refresh_event(
        &self,
        token: &arqon_proto::SecretToken,
        request: u64,
        now_us: u64,
    ) -> SessionEvent {
        let outcome = match self
            .shared
            .verifier
            .verify(token.expose(), now_us / 1_000_000)
        {
            Ok(claims) => {
                inc(&self.shared.metrics.refreshes);
                RefreshOutcome::Valid {
                    tenant: claims.tenant,
                    user: claims.sub,
                    expires_us: self.shared.expiry_us(claims.exp),
                }
            }
            Err(arqon_auth::AuthError::Expired { .. }) => RefreshOutcome::Expired,
            Err(error) => RefreshOutcome::Invalid(error.reason()),
        };
        SessionEvent::Refresh {
            outcome,
            request,
            now_us,
        }
    }

    /// Acks a request; a publish's ack waits for its store receipt (sent in publish order).
    async fn send_ack(&mut self, request: u64) {
        if self
            .refused
            .take_if(|refused| *refused == request)
            .is_some()
        {
            return;
        }
        let acked = self
            .current_for(Some(request))
            .and_then(|current| current.header.message_id.clone())
            .unwrap_or_default();
        let header = self.server_header(Some(request));
        let ack = arqon_proto::encode_envelope(&outbound::ack(header, acked));
        let Some((_, mut receipt)) = self.unstored.take_if(|(sent, _)| *sent == request) else {
            self.outbox.offer(ack, &self.shared.metrics);
            return;
        };
        // Stored already (the embedded spine, a tenant without history) and nothing before it
        // waits: answer now.
        if !self.storing_any()
            && let Some(result) = futures_util::FutureExt::now_or_never(&mut receipt)
        {
            match result {
                Ok(()) => {
                    inc(&self.shared.metrics.published);
                    self.outbox.offer(ack, &self.shared.metrics);
                }
                Err(error) => {
                    tracing::warn!(session = %self.session_id, %error, "spine publish not stored");
                    inc(&self.shared.metrics.publish_failures);
                    self.shared.metrics.obs.spine_errors.inc("publish");
                    self.send_error(v1::ErrorCode::Internal, Some(request), None);
                }
            }
            return;
        }
        let header = self.server_header(Some(request));
        let error = arqon_proto::encode_envelope(&outbound::error(
            header,
            v1::ErrorCode::Internal,
            "the message could not be stored".to_owned(),
            0,
        ));
        let storing = self.storing.get_or_insert_with(FuturesOrdered::new);
        storing.push_back(Box::pin(async move {
            Storing {
                result: receipt.await,
                ack,
                error,
            }
        }));
        if storing.len() > MAX_STORING
            && let Some(done) = self.next_stored().await
        {
            self.stored(done);
        }
    }

    fn current_for(&self, request: Option<u64>) -> Option<&Current> {
        self.current
            .as_deref()
            .filter(|current| request == Some(current.request))
    }

    fn server_header(&mut self, request: Option<u64>) -> v1::Header {
        self.sent += 1;
        let correlation = self
            .current_for(request)
            .and_then(|current| current.header.correlation_id.clone())
            .unwrap_or_default();
        // `<session>-s<n>`, in one allocation (`format!` would grow it twice).
        let mut message_id = String::with_capacity(self.session_id.len() + 2 + 20);
        message_id.push_str(&self.session_id);
        message_id.push_str("-s");
        let _ = write!(message_id, "{}", self.sent);
        outbound::server_header(&self.identity.tenant, message_id, &correlation, now_us())
    }

    fn send(&self, envelope: &v1::Envelope) {
        self.outbox
            .offer(arqon_proto::encode_envelope(envelope), &self.shared.metrics);
    }

    fn member(&self) -> PresenceMember {
        PresenceMember {
            tenant: self.identity.tenant.clone(),
            user: self.identity.user.clone(),
            session: self.session_id.to_string(),
            node: self.shared.settings.node_id.clone(),
            at_us: now_us(),
            meta: self
                .current
                .as_ref()
                .and_then(|current| current.presence_meta.clone()),
        }
    }

    /// The room's member list for a request the machine answered: every page after a join (the
    /// joiner's snapshot), or the page a `PresenceRequest` asked for.
    fn send_presence(&self, room: &arqon_proto::names::RoomName, request: u64, full: bool) {
        let (size, token) = self
            .current_for(Some(request))
            .map(|current| current.presence_page.clone())
            .unwrap_or_default();
        let query = arqon_brain::presence::ListQuery {
            after: token.as_deref().and_then(crate::presence::parse_page_token),
            page_size: crate::presence::page_size(size),
            all_pages: full,
            early: full,
        };
        self.send_list(room, request, query);
    }

    /// Sends `room`'s member list for `request` to this session, in the presence driver's order.
    fn send_list(
        &self,
        room: &arqon_proto::names::RoomName,
        request: u64,
        query: arqon_brain::presence::ListQuery,
    ) {
        let correlation = self
            .current_for(Some(request))
            .and_then(|current| current.header.correlation_id.clone())
            .unwrap_or_default();
        let target = crate::presence::ListTarget {
            tenant: self.identity.tenant.clone(),
            session_id: self.session_id.to_string(),
            request,
            correlation,
            outbox: self.outbox.clone(),
            metrics: Arc::clone(&self.shared.metrics),
        };
        self.shared.presence.send_list(target, room, query);
    }

    /// Runs the policy chain on the current publish under a `policy.check` span, counted.
    fn check_policy(
        &mut self,
        room: &arqon_proto::names::RoomName,
        request: u64,
    ) -> arqon_core::session::PolicyVerdict {
        let payload = self
            .current_for(Some(request))
            .and_then(|current| current.publish.as_ref())
            .map(|(payload, _)| payload.clone())
            .unwrap_or_default();
        let span = if self.untraced.is_some() {
            tracing::Span::none()
        } else {
            crate::telemetry::policy_span()
        };
        let started = std::time::Instant::now();
        let verdict = span.in_scope(|| {
            self.shared.hooks.policy.check(
                &self.identity.tenant,
                &self.identity.user,
                room,
                &payload,
            )
        });
        let obs = &self.shared.metrics.obs;
        obs.policy_checked(&span, started.elapsed(), &verdict);
        if matches!(verdict, arqon_core::session::PolicyVerdict::Block(_)) {
            let label = crate::telemetry::verdict_label(&verdict);
            self.trace_late(request, arqon_core::sampling::Outcome::Blocked, label);
        }
        verdict
    }

    fn send_error(
        &mut self,
        code: v1::ErrorCode,
        request: Option<u64>,
        retry_after_ms: Option<u64>,
    ) {
        let label = code.as_str_name();
        let label = label.strip_prefix("ERROR_CODE_").unwrap_or(label);
        self.shared.metrics.errors_sent.inc(label);
        if let Some(request) = request {
            self.trace_late(request, arqon_core::sampling::Outcome::Refused, label);
        }
        let refusal = self
            .current_for(request)
            .and_then(|current| current.refusal.clone());
        let header = self.server_header(request);
        let retry = retry_after_ms.map_or(0, |ms| u32::try_from(ms).unwrap_or(u32::MAX));
        let message = refusal.unwrap_or_else(|| {
            crate::policy::client_message(code)
                .unwrap_or(code.as_str_name())
                .to_owned()
        });
        self.send(&outbound::error(header, code, message, retry));
    }

    fn send_welcome(&mut self, heartbeat_interval_ms: u32) {
        let header = self.server_header(None);
        let settings = &self.shared.settings;
        let live = self.state.live().map(|live| live.limits);
        let limits = Limits {
            max_frame_bytes: u32::try_from(settings.frame_limits.max_frame_bytes)
                .unwrap_or(u32::MAX),
            max_payload_bytes: live.map_or(0, |l| l.max_payload_bytes),
            max_rooms: live.map_or(0, |l| l.max_rooms),
            publish_rate_per_sec: live.map_or(0, |l| l.publish.per_sec),
            publish_burst: live.map_or(0, |l| l.publish.burst),
        };
        let stamp = arqon_proto::Stamp {
            tenant: &self.identity.tenant,
            user: &self.identity.user,
            session_id: &self.session_id,
            timestamp_us: now_us(),
        };
        let welcome = outbound::welcome(
            header,
            &stamp,
            env!("CARGO_PKG_VERSION"),
            heartbeat_interval_ms,
            limits,
            &settings.node_id,
        );
        self.send(&welcome);
    }

    /// Takes one token from the tenant's node-wide publish bucket.
    fn charge_tenant(&self, room: arqon_proto::names::RoomName, request: u64) -> SessionEvent {
        let now_us = now_us();
        // A poisoned lock still holds valid buckets: take the guard rather than skip the charge
        // (skipping it would fail open).
        let verdict = self
            .shared
            .admission
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take_tenant_publish(&self.identity.tenant, now_us);
        SessionEvent::TenantBudget {
            room,
            request,
            verdict,
            now_us,
        }
    }

    /// Executes one effect; returns the event it produces, if any (a tenant budget or a policy
    /// verdict).
    async fn execute(&mut self, effect: SessionEffect) -> Option<SessionEvent> {
        match effect {
            SessionEffect::RejectUpgrade { .. } | SessionEffect::AcceptUpgrade => {}
            SessionEffect::SendWelcome {
                heartbeat_interval_ms,
            } => self.send_welcome(heartbeat_interval_ms),
            SessionEffect::SendError {
                code,
                request,
                retry_after_ms,
            } => self.send_error(wire_code(code), request, retry_after_ms),
            SessionEffect::SendAck { request } => self.send_ack(request).await,
            SessionEffect::SendPresence {
                room,
                request,
                full,
            } => self.send_presence(&room, request, full),
            SessionEffect::ForwardGovernance { .. } => {
                if let Some(body) = self.governance.take().map(|body| *body) {
                    Box::pin(self.forward_governance(body)).await;
                }
            }
            SessionEffect::SendPong { request } => {
                let nonce = self
                    .current_for(Some(request))
                    .map_or(0, |current| current.nonce);
                let header = self.server_header(Some(request));
                self.send(&outbound::pong(header, nonce));
            }
            SessionEffect::SendDrain => {
                let header = self.server_header(None);
                let reconnect_ms = u32::try_from(self.shared.settings.reconnect_after.as_millis())
                    .unwrap_or(u32::MAX);
                self.send(&outbound::drain(
                    header,
                    "server draining".to_owned(),
                    reconnect_ms,
                ));
            }
            effect @ (SessionEffect::FetchHistory { .. }
            | SessionEffect::ReadHistory { .. }
            | SessionEffect::SendRecovery { .. }
            | SessionEffect::OpenGate { .. }
            | SessionEffect::SendHistory { .. }) => {
                return Box::pin(self.execute_history(effect)).await;
            }
            SessionEffect::Subscribe { room, gated } => {
                Box::pin(self.subscribe(&room, gated)).await;
            }
            SessionEffect::Unsubscribe { room } => {
                let subject = Subject::room(&self.identity.tenant, &room);
                Box::pin(self.shared.hub.leave(&subject, self.identity.session)).await;
            }
            SessionEffect::ChargeTenant { room, request } => {
                return Some(self.charge_tenant(room, request));
            }
            SessionEffect::RunPolicy { room, request } => {
                let verdict = self.check_policy(&room, request);
                if verdict != arqon_core::session::PolicyVerdict::Allow {
                    inc(&self.shared.metrics.policy_blocked);
                }
                return Some(SessionEvent::PolicyVerdict {
                    room,
                    request,
                    verdict,
                    now_us: now_us(),
                });
            }
            SessionEffect::Publish {
                room,
                request,
                stamp,
            } => self.publish(&room, request, &stamp).await,
            SessionEffect::PresenceJoin { room } => {
                let _presence = crate::telemetry::presence_span("join", room.as_str()).entered();
                self.shared.metrics.obs.presence_joined();
                let member = self.member();
                self.shared.hooks.presence.join(&member, &room);
                self.shared.presence.join(&member, &room);
            }
            SessionEffect::PresenceLeave { room } => {
                let _presence = crate::telemetry::presence_span("leave", room.as_str()).entered();
                self.shared.metrics.obs.presence_left();
                let member = self.member();
                self.shared.hooks.presence.leave(&member, &room);
                self.shared.presence.leave(&member, &room);
            }
            SessionEffect::Close { code } => self.close_code = Some(code),
            SessionEffect::ScheduleTick { at_us } => self.next_tick_us = Some(at_us),
        }
        None
    }

    /// Joins the node's fan-out of `room` (the first local member opens its spine subscription).
    async fn subscribe(&mut self, room: &arqon_proto::names::RoomName, gated: bool) {
        let subject = Subject::room(&self.identity.tenant, room);
        let joined = self
            .shared
            .hub
            .join(&subject, self.identity.session, self.outbox.clone(), gated)
            .await;
        if let Err(error) = joined {
            self.shared.metrics.obs.spine_errors.inc("subscribe");
            tracing::warn!(session = %self.session_id, %error, "room subscription failed");
            self.send_error(v1::ErrorCode::Internal, None, None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_session_error_code_has_a_distinct_wire_code() {
        let all = [
            ErrorCode::ProtocolError,
            ErrorCode::TextFrame,
            ErrorCode::FrameTooLarge,
            ErrorCode::UnsupportedVersion,
            ErrorCode::InvalidRoom,
            ErrorCode::NotInRoom,
            ErrorCode::RoomLimit,
            ErrorCode::PayloadTooLarge,
            ErrorCode::RateLimited,
            ErrorCode::TokenExpired,
            ErrorCode::TokenInvalid,
            ErrorCode::Forbidden,
            ErrorCode::PolicyBlocked,
            ErrorCode::PolicyTrap,
            ErrorCode::PolicyTimeout,
            ErrorCode::PolicyMemory,
            ErrorCode::PolicyAbi,
            ErrorCode::PolicyLoad,
            ErrorCode::ServerDraining,
        ];
        let wire: std::collections::BTreeSet<i32> =
            all.iter().map(|c| wire_code(*c) as i32).collect();
        assert_eq!(wire.len(), all.len());
        assert!(!wire.contains(&(v1::ErrorCode::Unspecified as i32)));
    }
}

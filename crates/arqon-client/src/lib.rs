//! Rust client for `ArqonBus`: connect, rooms, presence and typed governance messages.
//!
//! A [`BusClient`] holds one WebSocket to a Shield node (token as `Authorization: Bearer`). A
//! background task owns the socket: it sends heartbeats at the interval the `Welcome` names,
//! reconnects with jittered exponential backoff when the socket drops, and joins the client's rooms
//! again. A reconnect never comes sooner than the server asked: a 503's `Retry-After`, or a `Drain`'s
//! `reconnect_after_ms` (on `Drain` the client closes and reconnects, to whichever node the URL
//! reaches). The jitter spreads a crowd of clients that lost the same node over time, so they do
//! not come back in one wave.
//!
//! Recovery (`specs/history.md`): the client keeps each joined room's position (the last message's
//! offset and epoch, or the join point) and joins with it as `since`, first and after every
//! reconnect, so the server sends what was missed. [`Event::Recovered`] says whether all of it
//! came; a message the app has already seen (same epoch, offset not newer) is never delivered twice.
//!
//! Requests (`join`, `leave`, `publish`, `request_presence`) return once the server answered them:
//! `Ok`, or the typed [`Refusal`] its `Error` reply carries ([`ClientError::Server`]), matched by
//! correlation id; an error that answers no request fails the only pending request when exactly one
//! is pending, and otherwise arrives as [`Event::Error`].
//!
//! Governance (seed 004): [`BusClient::send`] takes an [`UpstreamMessage`]; a proposal is first
//! remembered by the client's [`DataPlaneAgent`]. [`BusClient::recv`] returns the next
//! [`DownstreamMessage`] after the agent's checks: an approval of one of this client's proposals
//! only when its digest verifies (otherwise the approval is refused, an Alert goes upstream and
//! [`DownstreamMessage::ApprovalRefused`] is returned); enforcement updates the agent (an
//! emergency stop pauses it); stale catalog updates and other data planes' decisions are skipped.

mod messages;
mod refusal;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_core::governance::data_plane::{DataPlaneAgent, DataPlaneEffect};
use arqon_core::history::RoomCursor;
use arqon_proto::v1::{self, Envelope, Header, envelope::Body};
use arqon_proto::{GovernanceCommand, PROTOCOL_VERSION, batch, encode_envelope};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};

pub use arqon_core::governance::data_plane::AdaptationPaused;
pub use arqon_core::rollout::{ProposalRef, RolloutTracker};
pub use messages::{
    AlertSeverity, ApprovedRollout, DownstreamMessage, EnforcementAction, Proposal, RolloutConfig,
    UpstreamMessage,
};
pub use refusal::Refusal;

/// How many undelivered events (or governance messages) the client buffers.
const QUEUE: usize = 1024;

/// Events held beyond [`QUEUE`] while the app is not reading (a recovery can bring thousands at
/// once); the socket keeps being read, so answers to requests are never stuck behind them. Past
/// this many the oldest are dropped and counted.
const BACKLOG: usize = 100_000;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The first connection failed (no server, a bad URL, a broken handshake).
    #[error("connect: {0}")]
    Connect(String),
    /// The server refused the upgrade with this HTTP status (401: the token; 503: the node is
    /// full or accepting too fast, retry after `retry_after`).
    #[error("connect: refused with HTTP {status}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's `Retry-After`, when it sent one.
        retry_after: Option<Duration>,
    },
    /// The client was closed (its background task ended).
    #[error("client closed")]
    Closed,
    /// Adaptation is paused: proposals are refused until a Resume.
    #[error(transparent)]
    Paused(#[from] AdaptationPaused),
    /// The server refused the request: its `Error` reply, typed.
    #[error(transparent)]
    Server(#[from] Refusal),
    /// The connection dropped before the server answered; whether the request took effect is
    /// unknown. Rooms are joined again on reconnect.
    #[error("connection lost before the server answered")]
    ConnectionLost,
}

/// Reconnect backoff: `initial`, doubling, at most `max`; each wait is stretched by a random
/// 0–50 % (see [`Jitter`]).
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The first wait.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(50),
            max: Duration::from_secs(5),
        }
    }
}

impl Backoff {
    /// The wait before reconnect attempt `attempt` (0-based), before jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(16));
        self.initial.saturating_mul(factor).min(self.max)
    }
}

/// Spreads reconnect waits: `stretch(d)` is uniform in `[d, 1.5·d]`, so a wait never undercuts
/// what the server asked for. A small xorshift generator seeded per client; it needs no
/// cryptographic quality.
#[derive(Clone, Debug)]
pub struct Jitter(u64);

impl Jitter {
    /// A generator seeded from `seed` (zero is replaced: xorshift needs a non-zero state).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// A generator seeded from the process's random hasher keys and the clock.
    fn from_entropy() -> Self {
        use std::hash::BuildHasher as _;
        Self::new(std::collections::hash_map::RandomState::new().hash_one(now_us()))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `wait` plus a uniform 0–50 % of it.
    pub fn stretch(&mut self, wait: Duration) -> Duration {
        let half = u64::try_from(wait.as_micros() / 2).unwrap_or(u64::MAX);
        let extra = if half == 0 {
            0
        } else {
            self.next() % (half + 1)
        };
        wait.saturating_add(Duration::from_micros(extra))
    }
}

/// When to try to reconnect: the backoff for the attempt, or what the server last asked for if that
/// is longer, stretched by the jitter.
#[derive(Clone, Debug)]
struct Reconnect {
    backoff: Backoff,
    jitter: Jitter,
    /// The server's floor for the next wait (a 503's `Retry-After`, a `Drain`'s hint); used once.
    not_before: Option<Duration>,
}

impl Reconnect {
    fn new(backoff: Backoff, jitter: Jitter) -> Self {
        Self {
            backoff,
            jitter,
            not_before: None,
        }
    }

    /// The server's answer to the last attempt: a wait it asked for, or none.
    fn server_asked(&mut self, wait: Option<Duration>) {
        self.not_before = wait;
    }

    /// The wait before attempt `attempt` (0-based).
    fn next_wait(&mut self, attempt: u32) -> Duration {
        let floor = self.not_before.take().unwrap_or_default();
        self.jitter.stretch(self.backoff.delay(attempt).max(floor))
    }
}

/// A room, presence or session event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// The session is open (again, after a reconnect).
    Connected {
        /// The session id the server assigned.
        session_id: String,
    },
    /// The socket dropped; the client is reconnecting.
    Disconnected,
    /// A message published to a joined room.
    Message {
        /// The room.
        room: String,
        /// The sender's user id (stamped by the server).
        sender: String,
        /// The bytes.
        payload: Bytes,
        /// Their MIME type.
        content_type: String,
        /// Its offset in the room's history (0 when the tenant keeps none).
        offset: u64,
    },
    /// A join (first, or again after a reconnect) was answered with the room's history: `count`
    /// recovered messages follow as [`Event::Message`]s.
    Recovered {
        /// The room.
        room: String,
        /// Every message missed since the client's position follows; false means some are gone
        /// (refetch the room's state).
        recovered: bool,
        /// More were missed than one recovery returns; only the newest follow.
        truncated: bool,
        /// How many follow.
        count: u32,
    },
    /// Members of a room: a page of its member list (`snapshot`: the pages the server sends after a
    /// join together replace what the app knew of the room), or members that just joined.
    PresenceJoin {
        /// The room.
        room: String,
        /// The users.
        users: Vec<String>,
        /// A page of the full member list, not new joins.
        snapshot: bool,
    },
    /// A member left a room.
    PresenceLeave {
        /// The room.
        room: String,
        /// The user.
        user: String,
    },
    /// An error the server sent that answers none of this client's requests.
    Error {
        /// The code.
        code: v1::ErrorCode,
        /// Why.
        message: String,
    },
}

/// What a request's caller waits for: the server's answer to it.
type Answer = oneshot::Sender<Result<(), ClientError>>;

enum Outgoing {
    /// A request; the caller waits on the answer.
    Request(Body, Answer),
    Governance(GovernanceCommand),
}

/// A connected client.
pub struct BusClient {
    outgoing: mpsc::Sender<Outgoing>,
    governance: mpsc::Receiver<GovernanceIn>,
    events: mpsc::Receiver<Event>,
    agent: DataPlaneAgent,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for BusClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BusClient")
            .field("paused", &self.agent.paused())
            .finish_non_exhaustive()
    }
}

/// A governance message or a refusal of one this client sent.
enum GovernanceIn {
    Command(GovernanceCommand),
    Refused(v1::ErrorCode, String),
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl BusClient {
    /// Connects to `url` (`ws://host:port/v1/socket`) with `token`; returns once the session is
    /// open (its `Welcome` arrived).
    pub async fn connect(url: &str, token: &str) -> Result<Self, ClientError> {
        Self::connect_with(url, token, Backoff::default()).await
    }

    /// [`BusClient::connect`] with a reconnect backoff.
    pub async fn connect_with(
        url: &str,
        token: &str,
        backoff: Backoff,
    ) -> Result<Self, ClientError> {
        let first = Connection::open(url, token)
            .await
            .map_err(ClientError::from)?;
        let (outgoing, outgoing_rx) = mpsc::channel(QUEUE);
        let (governance_tx, governance) = mpsc::channel(QUEUE);
        let (events_tx, events) = mpsc::channel(QUEUE);
        let runner = Runner {
            url: url.to_owned(),
            token: token.to_owned(),
            reconnect: Reconnect::new(backoff, Jitter::from_entropy()),
            rooms: BTreeMap::new(),
            sent: 0,
            pending: VecDeque::new(),
            governance_ids: BTreeSet::new(),
            outgoing: outgoing_rx,
            governance: governance_tx,
            events: events_tx,
            backlog: VecDeque::new(),
        };
        let task = tokio::spawn(runner.run(first));
        Ok(Self {
            outgoing,
            governance,
            events,
            agent: DataPlaneAgent::new(),
            task,
        })
    }

    /// Joins `room` (joined again after every reconnect); returns once the server acknowledged
    /// it, or its typed refusal ([`ClientError::Server`]).
    pub async fn join(&self, room: &str) -> Result<(), ClientError> {
        // Checked here with the server's own grammar: the same typed refusal, no round trip.
        arqon_proto::names::RoomName::parse(room).map_err(|e| Refusal::InvalidRoom {
            message: e.to_string(),
        })?;
        self.request(Body::Join(v1::Join {
            room: room.to_owned(),
            ..v1::Join::default()
        }))
        .await
    }

    /// Leaves `room`; returns once the server acknowledged it, or its typed refusal.
    pub async fn leave(&self, room: &str) -> Result<(), ClientError> {
        self.request(Body::Leave(v1::Leave {
            room: room.to_owned(),
        }))
        .await
    }

    /// Publishes `payload` to `room`; returns once the server accepted it (the policy chain
    /// passed and it was routed), or its typed refusal: [`Refusal::PolicyBlocked`],
    /// [`Refusal::RateLimited`], [`Refusal::PayloadTooLarge`], [`Refusal::NotInRoom`], ….
    pub async fn publish(
        &self,
        room: &str,
        payload: impl Into<Bytes>,
        content_type: &str,
    ) -> Result<(), ClientError> {
        self.request(Body::Publish(v1::Publish {
            room: room.to_owned(),
            payload: payload.into(),
            content_type: content_type.to_owned(),
        }))
        .await
    }

    /// Asks for the members of `room` (answered with [`Event::PresenceJoin`] pages); returns once
    /// the first page arrived, or the typed refusal.
    pub async fn request_presence(&self, room: &str) -> Result<(), ClientError> {
        self.request(Body::PresenceRequest(v1::PresenceRequest {
            room: room.to_owned(),
            ..v1::PresenceRequest::default()
        }))
        .await
    }

    /// Sends a request and waits for the server's answer to it.
    async fn request(&self, body: Body) -> Result<(), ClientError> {
        let (answer, answered) = oneshot::channel();
        self.outgoing
            .send(Outgoing::Request(body, answer))
            .await
            .map_err(|_| ClientError::Closed)?;
        answered.await.map_err(|_| ClientError::Closed)?
    }

    /// The next room, presence or session event.
    pub async fn next_event(&mut self) -> Result<Event, ClientError> {
        self.events.recv().await.ok_or(ClientError::Closed)
    }

    /// Sends a governance message upstream. A proposal is remembered first (refused with
    /// [`ClientError::Paused`] while adaptation is paused).
    pub async fn send(&mut self, message: impl Into<UpstreamMessage>) -> Result<(), ClientError> {
        let command = message.into().into_command(now_us());
        if let GovernanceCommand::Proposal(proposal) = &command {
            self.agent.propose(proposal)?;
        }
        self.send_command(command).await
    }

    /// Sends any governance body (a Tier-1 or operator client's downstream commands).
    pub async fn send_command(&self, command: GovernanceCommand) -> Result<(), ClientError> {
        self.outgoing
            .send(Outgoing::Governance(command))
            .await
            .map_err(|_| ClientError::Closed)
    }

    /// Whether adaptation is paused (after an emergency stop or a pause, until a resume).
    pub fn paused(&self) -> bool {
        self.agent.paused()
    }

    /// The next governance message for this data plane, after the digest check and the agent's
    /// bookkeeping (see the crate docs).
    pub async fn recv(&mut self) -> Result<DownstreamMessage, ClientError> {
        loop {
            let incoming = self.governance.recv().await.ok_or(ClientError::Closed)?;
            let command = match incoming {
                GovernanceIn::Refused(code, message) => {
                    return Ok(DownstreamMessage::Refused { code, message });
                }
                GovernanceIn::Command(command) => command,
            };
            if let Some(message) = self.on_command(&command).await? {
                return Ok(message);
            }
        }
    }

    async fn on_command(
        &mut self,
        command: &GovernanceCommand,
    ) -> Result<Option<DownstreamMessage>, ClientError> {
        let effects = self.agent.on_downstream(command, now_us());
        for effect in &effects {
            if let DataPlaneEffect::SendAlert(alert) = effect {
                tracing::warn!(message = %alert.message, "approval refused");
                self.send_command(GovernanceCommand::Alert(alert.clone()))
                    .await?;
                let proposal_id = alert
                    .context
                    .get("proposal_id")
                    .cloned()
                    .unwrap_or_default();
                return Ok(Some(DownstreamMessage::ApprovalRefused {
                    proposal_id,
                    reason: alert.message.clone(),
                }));
            }
        }
        Ok(effects
            .into_iter()
            .find_map(|effect| downstream(command, effect)))
    }

    /// Closes the connection.
    pub fn close(self) {
        self.task.abort();
    }
}

impl Drop for BusClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The typed message for the first effect of a downstream command.
fn downstream(command: &GovernanceCommand, effect: DataPlaneEffect) -> Option<DownstreamMessage> {
    Some(match (command, effect) {
        (GovernanceCommand::Approval(a), DataPlaneEffect::StartRollout { proposal, config }) => {
            DownstreamMessage::Approval {
                proposal_id: a.proposal_id.clone(),
                proposal_digest: a.proposal_digest.clone(),
                rollout: ApprovedRollout { proposal, config },
            }
        }
        (
            _,
            DataPlaneEffect::Rejected {
                proposal_id,
                reason,
            },
        ) => DownstreamMessage::Rejection {
            proposal_id,
            reason,
        },
        (GovernanceCommand::Enforce(e), _) => DownstreamMessage::Enforce {
            action: messages::enforcement(e.action.as_ref())?,
            reason: e.reason.clone(),
        },
        (
            _,
            DataPlaneEffect::LoadCatalog {
                version,
                source_uri,
            },
        ) => DownstreamMessage::CatalogUpdate {
            version,
            source_uri,
        },
        _ => return None,
    })
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// An open session: the socket and the `Welcome`'s facts.
struct Connection {
    socket: Socket,
    session_id: String,
    heartbeat: Duration,
    /// Envelopes that came behind the `Welcome` in its batch frame, handled before any other.
    early: Vec<Envelope>,
}

/// Why one connection attempt failed.
#[derive(Debug)]
struct OpenError {
    reason: String,
    /// The HTTP status of a refused upgrade.
    status: Option<u16>,
    retry_after: Option<Duration>,
}

impl OpenError {
    fn other(reason: impl std::fmt::Display) -> Self {
        Self {
            reason: reason.to_string(),
            status: None,
            retry_after: None,
        }
    }
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl From<OpenError> for ClientError {
    fn from(error: OpenError) -> Self {
        match error.status {
            Some(status) => Self::Refused {
                status,
                retry_after: error.retry_after,
            },
            None => Self::Connect(error.reason),
        }
    }
}

/// `Retry-After` in delay-seconds (the form the Shield sends); an HTTP date is ignored.
fn retry_after(response: &tungstenite::http::Response<Option<Vec<u8>>>) -> Option<Duration> {
    let value = response.headers().get("retry-after")?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

impl Connection {
    async fn open(url: &str, token: &str) -> Result<Self, OpenError> {
        let mut request = url.into_client_request().map_err(OpenError::other)?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| OpenError::other("token is not ASCII"))?;
        request.headers_mut().insert("authorization", bearer);
        // Take batch frames: what the node queued for this client together comes in one frame.
        request.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_static(arqon_proto::batch::SUBPROTOCOL),
        );
        let (mut socket, _) =
            // Nagle off: a small publish leaves at once.
            tokio_tungstenite::connect_async_with_config(request, None, true)
                .await
                .map_err(|e| match e {
                    tungstenite::Error::Http(response) => {
                        let status = response.status().as_u16();
                        OpenError {
                            reason: format!("refused with HTTP {status}"),
                            status: Some(status),
                            retry_after: retry_after(&response),
                        }
                    }
                    other => OpenError::other(other),
                })?;
        loop {
            match socket.next().await {
                Some(Ok(WsMessage::Binary(bytes))) => {
                    let envelope = Envelope::decode(bytes).map_err(OpenError::other)?;
                    let mut envelopes = batch::unpack(envelope).into_iter();
                    let welcome = envelopes.by_ref().find_map(|envelope| match envelope.body {
                        Some(Body::Welcome(welcome)) => Some(welcome),
                        _ => None,
                    });
                    if let Some(welcome) = welcome {
                        return Ok(Self {
                            socket,
                            session_id: welcome.session_id,
                            heartbeat: Duration::from_millis(
                                u64::from(welcome.heartbeat_interval_ms).max(100),
                            ),
                            // What the node sent right behind the Welcome, in the same frame.
                            early: envelopes.collect(),
                        });
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(OpenError::other(e)),
                None => return Err(OpenError::other("closed before Welcome")),
            }
        }
    }
}

/// One binary frame of `header` and `body`.
fn encode(header: Header, body: Body) -> WsMessage {
    WsMessage::Binary(encode_envelope(&arqon_proto::outbound::envelope(
        header, body,
    )))
}

/// A request the server has not answered yet.
enum Pending {
    /// A caller waits; `join` names the room when it is a join.
    Caller {
        answer: Answer,
        join: Option<String>,
    },
    /// The client's own request: a heartbeat, or a join again after a reconnect.
    Own { rejoin: Option<String> },
}

impl Pending {
    fn joining(&self) -> Option<&String> {
        match self {
            Self::Caller { join, .. } => join.as_ref(),
            Self::Own { rejoin } => rejoin.as_ref(),
        }
    }
}

/// The background task's state.
struct Runner {
    url: String,
    token: String,
    reconnect: Reconnect,
    /// Joined rooms and the client's place in each.
    rooms: BTreeMap<String, RoomCursor>,
    sent: u64,
    /// Requests in flight on this connection, oldest first, by correlation id.
    pending: VecDeque<(String, Pending)>,
    /// Correlation ids of governance messages sent (their refusals go to `recv`).
    governance_ids: BTreeSet<String>,
    outgoing: mpsc::Receiver<Outgoing>,
    governance: mpsc::Sender<GovernanceIn>,
    events: mpsc::Sender<Event>,
    /// Events the app has not taken yet, beyond the channel's room.
    backlog: VecDeque<Event>,
}

impl Runner {
    /// Hands an event to the app: straight into the channel when it has room and nothing waits
    /// before it, else into the backlog.
    fn emit(&mut self, event: Event) {
        if self.backlog.is_empty() {
            match self.events.try_send(event) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(event)) => self.backlog.push_back(event),
            }
        } else {
            self.backlog.push_back(event);
        }
        if self.backlog.len() > BACKLOG {
            self.backlog.pop_front();
            tracing::warn!("the app is not reading events: the oldest was dropped");
        }
    }

    fn header(&mut self, governance: bool) -> Header {
        self.sent += 1;
        let id = format!("{}-{}", if governance { "g" } else { "c" }, self.sent);
        if governance {
            self.governance_ids.insert(id.clone());
        }
        Header {
            protocol_version: PROTOCOL_VERSION,
            message_id: id.clone(),
            correlation_id: id,
            ..Header::default()
        }
    }

    fn frame(&mut self, outgoing: Outgoing) -> WsMessage {
        let (header, body) = match outgoing {
            Outgoing::Request(body, answer) => {
                let mut body = body;
                let join = match &mut body {
                    Body::Join(join) => {
                        let cursor = self.rooms.entry(join.room.clone()).or_default();
                        join.since = Some(since(cursor));
                        Some(join.room.clone())
                    }
                    Body::Leave(leave) => {
                        self.rooms.remove(&leave.room);
                        None
                    }
                    _ => None,
                };
                let header = self.header(false);
                let pending = Pending::Caller { answer, join };
                self.pending
                    .push_back((header.correlation_id.clone(), pending));
                (header, body)
            }
            Outgoing::Governance(command) => (self.header(true), command.into_body()),
        };
        encode(header, body)
    }

    /// A frame of the client's own: a heartbeat, or a join again after a reconnect.
    fn own_frame(&mut self, body: Body) -> WsMessage {
        let rejoin = match &body {
            Body::Join(join) => Some(join.room.clone()),
            _ => None,
        };
        let header = self.header(false);
        self.pending
            .push_back((header.correlation_id.clone(), Pending::Own { rejoin }));
        encode(header, body)
    }

    /// The pending request `correlation` answers, taken out; or, for an error that answers no
    /// request (`uncorrelated`), the only request pending when exactly one is.
    fn answered(&mut self, correlation: &str, uncorrelated: bool) -> Option<Pending> {
        if uncorrelated {
            return (self.pending.len() == 1)
                .then(|| self.pending.pop_front().map(|(_, p)| p))
                .flatten();
        }
        let at = self.pending.iter().position(|(id, _)| id == correlation)?;
        self.pending.remove(at).map(|(_, pending)| pending)
    }

    /// The connection dropped: nothing pending will be answered.
    fn lose_pending(&mut self) {
        for (_, pending) in self.pending.drain(..) {
            if let Pending::Caller { answer, .. } = pending {
                let _ = answer.send(Err(ClientError::ConnectionLost));
            }
        }
    }

    async fn run(mut self, first: Connection) {
        let mut connection = Some(first);
        let mut attempt = 0u32;
        loop {
            let Some(open) = connection.take() else {
                tokio::time::sleep(self.reconnect.next_wait(attempt)).await;
                attempt = attempt.saturating_add(1);
                match Connection::open(&self.url, &self.token).await {
                    Ok(open) => connection = Some(open),
                    Err(error) => {
                        tracing::debug!(%error, attempt, "reconnect failed");
                        self.reconnect.server_asked(error.retry_after);
                    }
                }
                continue;
            };
            attempt = 0;
            self.emit(Event::Connected {
                session_id: open.session_id.clone(),
            });
            let reconnect = self.session(open).await;
            self.lose_pending();
            if !reconnect {
                return;
            }
            self.emit(Event::Disconnected);
        }
    }

    /// Drives one connection; false when the client is gone (stop), true to reconnect.
    async fn session(&mut self, open: Connection) -> bool {
        let Connection {
            mut socket,
            heartbeat,
            early,
            ..
        } = open;
        for envelope in early {
            if let Some(wait) = self.receive(envelope) {
                self.reconnect.server_asked(Some(wait));
                let _ = socket.close(None).await;
                return true;
            }
        }
        let rooms: Vec<(String, v1::Position)> = self
            .rooms
            .iter()
            .map(|(room, cursor)| (room.clone(), since(cursor)))
            .collect();
        for (room, position) in rooms {
            let join = self.own_frame(Body::Join(v1::Join {
                room,
                since: Some(position),
                ..v1::Join::default()
            }));
            if socket.send(join).await.is_err() {
                return true;
            }
        }
        let mut beat = tokio::time::interval(heartbeat);
        beat.tick().await;
        let events = self.events.clone();
        loop {
            tokio::select! {
                permit = events.reserve(), if !self.backlog.is_empty() => {
                    let (Ok(permit), Some(event)) = (permit, self.backlog.pop_front()) else {
                        self.backlog.clear();
                        continue;
                    };
                    permit.send(event);
                }
                outgoing = self.outgoing.recv() => {
                    let Some(outgoing) = outgoing else {
                        let _ = socket.close(None).await;
                        return false;
                    };
                    let frame = self.frame(outgoing);
                    if socket.send(frame).await.is_err() {
                        return true;
                    }
                }
                _ = beat.tick() => {
                    let frame = self.own_frame(Body::Heartbeat(v1::Heartbeat {}));
                    if socket.send(frame).await.is_err() {
                        return true;
                    }
                }
                frame = socket.next() => match frame {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        let Ok(envelope) = Envelope::decode(bytes) else {
                            continue;
                        };
                        for envelope in batch::unpack(envelope) {
                            if let Some(wait) = self.receive(envelope) {
                                self.reconnect.server_asked(Some(wait));
                                let _ = socket.close(None).await;
                                return true;
                            }
                        }
                    }
                    Some(Ok(WsMessage::Close(_)) | Err(_)) | None => return true,
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    /// Handles one received envelope; `Some(wait)` when it is a `Drain`: the node is going away, so
    /// the connection is left now and the next one is tried after the node's hint.
    fn receive(&mut self, envelope: Envelope) -> Option<Duration> {
        if let Some(Body::Drain(drain)) = &envelope.body {
            return Some(Duration::from_millis(u64::from(drain.reconnect_after_ms)));
        }
        if let Some(event) = self.dispatch(envelope) {
            self.emit(event);
        }
        None
    }

    /// The event an envelope makes for the app, if any (answers go to their callers).
    fn dispatch(&mut self, envelope: Envelope) -> Option<Event> {
        let header = envelope.header.unwrap_or_default();
        let body = envelope.body?;
        if matches!(body, Body::Ack(_) | Body::Pong(_) | Body::PresenceUpdate(_))
            && let Some(Pending::Caller { answer, .. }) =
                self.answered(&header.correlation_id, false)
        {
            let _ = answer.send(Ok(()));
        }
        let event = match body {
            Body::Message(m) => {
                let fresh = self
                    .rooms
                    .get_mut(&m.room)
                    .is_none_or(|cursor| cursor.on_message(&m.epoch, m.offset));
                if !fresh {
                    return None;
                }
                Event::Message {
                    room: m.room,
                    sender: header.sender_user_id,
                    payload: m.payload,
                    content_type: m.content_type,
                    offset: m.offset,
                }
            }
            Body::Recovery(recovery) => {
                if let Some(cursor) = self.rooms.get_mut(&recovery.room) {
                    let position = recovery.position.map(|p| (p.epoch, p.offset));
                    cursor.on_recovery(recovery.count, position);
                }
                Event::Recovered {
                    room: recovery.room,
                    recovered: recovery.recovered,
                    truncated: recovery.truncated,
                    count: recovery.count,
                }
            }
            Body::PresenceUpdate(update) => Event::PresenceJoin {
                snapshot: update.kind() == v1::PresenceUpdateKind::Snapshot,
                room: update.room,
                users: update.members.into_iter().map(|m| m.user_id).collect(),
            },
            Body::PresenceLeave(leave) => Event::PresenceLeave {
                room: leave.room,
                user: leave.user_id,
            },
            Body::Error(error) => {
                let code = v1::ErrorCode::try_from(error.code).unwrap_or_default();
                if self.governance_ids.remove(&header.correlation_id) {
                    let _ = self
                        .governance
                        .try_send(GovernanceIn::Refused(code, error.message));
                    return None;
                }
                let uncorrelated = header.correlation_id.is_empty();
                let Some(pending) = self.answered(&header.correlation_id, uncorrelated) else {
                    // An error that answers none of this client's requests goes to the app.
                    return Some(Event::Error {
                        code,
                        message: error.message,
                    });
                };
                // A refused join is not joined again on reconnect.
                if let Some(room) = pending.joining() {
                    self.rooms.remove(room);
                }
                let refusal = Refusal::from_reply(error.code, error.message, error.retry_after_ms);
                match pending {
                    Pending::Caller { answer, .. } => {
                        let _ = answer.send(Err(ClientError::Server(refusal)));
                        return None;
                    }
                    Pending::Own { .. } => Event::Error {
                        code,
                        message: refusal.to_string(),
                    },
                }
            }
            other => {
                if let Some(command) = GovernanceCommand::from_body(other)
                    && self
                        .governance
                        .try_send(GovernanceIn::Command(command))
                        .is_err()
                {
                    tracing::warn!("governance queue full: message dropped");
                }
                return None;
            }
        };
        Some(event)
    }
}

/// The `since` of a join for a room's cursor.
fn since(cursor: &RoomCursor) -> v1::Position {
    let (offset, epoch) = cursor.since();
    v1::Position {
        offset,
        epoch: epoch.to_owned(),
    }
}

#[cfg(test)]
mod tests;

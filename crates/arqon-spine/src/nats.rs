//! The NATS Spine (async-nats): one NATS subscription per `subscribe`, reconnecting forever with back-off.
//!
//! Reconnects are async-nats's: it retries the configured and the discovered (cluster) servers,
//! restores subscriptions and sends publishes queued meanwhile. This module turns its connection
//! events into a [`SpineStatus`] watch and counts slow-consumer drops.
//!
//! For a tenant that keeps history, room publishes go through `JetStream` and room subscriptions
//! read the stream's republished copies, which carry their offsets (`jetstream.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_nats::{ConnectOptions, Event, HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tracing::Instrument;

use crate::headers::Headers;
use crate::history::{History, HistoryConfig, HistoryError, HistoryPage, HistoryQuery};
use crate::jetstream::JetStreamHistory;
use crate::spine::{
    Message, Receipt, Spine, SpineError, SpineStatus, Subscription, publish_span, stored_already,
    trace_receive,
};
use arqon_core::subject::{Subject, SubjectKind};

/// How to reach NATS. Its `Debug` shows the URLs with any credentials in them masked.
#[derive(Clone)]
pub struct NatsConfig {
    /// Server URLs (`nats://host:port`); several for a cluster. Discovered servers are used too.
    pub urls: Vec<String>,
    /// Client name shown by the server's monitoring (for example the node id).
    pub name: Option<String>,
    /// Limit for the first connection.
    pub connect_timeout: Duration,
    /// Longest wait between two reconnect attempts.
    pub max_reconnect_delay: Duration,
    /// Queue length of one subscription before messages are dropped.
    pub subscription_capacity: usize,
    /// Longest wait for the server to confirm a subscription or a flush (it waits out a reconnect).
    pub round_trip_timeout: Duration,
    /// Commands (publishes) the client queues while disconnected before `publish` waits.
    pub client_capacity: usize,
    /// Which tenants keep history (`JetStream`); the default keeps none.
    pub history: HistoryConfig,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let urls: Vec<String> = self.urls.iter().map(|u| masked_url(u)).collect();
        f.debug_struct("NatsConfig")
            .field("urls", &urls)
            .field("name", &self.name)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("subscription_capacity", &self.subscription_capacity)
            .field("round_trip_timeout", &self.round_trip_timeout)
            .field("client_capacity", &self.client_capacity)
            .field("history", &self.history)
            .finish()
    }
}

/// `url` with the user-info part (`user:password@`, or a token) replaced by `***`, for logs.
pub(crate) fn masked_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) if scheme.is_empty() => format!("***@{}", &rest[at + 1..]),
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

impl NatsConfig {
    /// Defaults for `urls`: 5 s connect timeout, reconnect back-off up to 1 s, 64 Ki-message queues,
    /// 10 s round-trip timeout.
    pub fn new<I, S>(urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            urls: urls.into_iter().map(Into::into).collect(),
            name: None,
            connect_timeout: Duration::from_secs(5),
            max_reconnect_delay: Duration::from_secs(1),
            subscription_capacity: 64 * 1024,
            client_capacity: 4096,
            round_trip_timeout: Duration::from_secs(10),
            history: HistoryConfig::default(),
        }
    }
}

/// Connection bookkeeping shared with the event callback.
struct Shared {
    status: watch::Sender<SpineStatus>,
    ever_connected: AtomicBool,
    dropped: AtomicU64,
}

impl Shared {
    /// Idempotent: the first connection is not a reconnect, and a repeated event changes nothing.
    fn mark_connected(&self) {
        let again = self.ever_connected.swap(true, Ordering::Relaxed);
        let changed = self.status.send_if_modified(|s| {
            if s.connected {
                return false;
            }
            s.connected = true;
            s.reconnects += u64::from(again);
            true
        });
        if changed && again {
            tracing::info!("spine reconnected to NATS");
        }
    }

    fn on_event(&self, event: &Event) {
        match event {
            Event::Connected => self.mark_connected(),
            Event::Disconnected => {
                self.status
                    .send_if_modified(|s| std::mem::replace(&mut s.connected, false));
                tracing::warn!("spine lost its NATS connection");
            }
            Event::SlowConsumer(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            other => tracing::debug!(event = %other, "nats event"),
        }
    }
}

/// The NATS Spine. Cheap to clone; clones share one connection.
#[derive(Clone)]
pub struct NatsSpine {
    client: async_nats::Client,
    shared: Arc<Shared>,
    barrier_timeout: Duration,
    history: Option<Arc<JetStreamHistory>>,
}

impl std::fmt::Debug for NatsSpine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsSpine")
            .field("status", &*self.shared.status.borrow())
            .finish_non_exhaustive()
    }
}

/// The server addresses of `urls`, for `async_nats` (a comma-joined string would be read as one
/// URL); the first bad URL's error in words.
pub fn server_addrs(urls: &[String]) -> Result<Vec<async_nats::ServerAddr>, String> {
    urls.iter()
        .map(|u| {
            u.parse::<async_nats::ServerAddr>()
                .map_err(|e| format!("{u}: {e}"))
        })
        .collect()
}

impl NatsSpine {
    /// Connects to the first reachable server of `config.urls`, within `config.connect_timeout`.
    pub async fn connect(config: &NatsConfig) -> Result<Self, SpineError> {
        let urls = config.urls.join(",");
        let connect_error = |reason: String| SpineError::Connect {
            urls: urls.clone(),
            reason,
        };
        let addrs = server_addrs(&config.urls).map_err(connect_error)?;
        if addrs.is_empty() {
            return Err(connect_error("no server URL configured".into()));
        }
        let shared = Arc::new(Shared {
            status: watch::Sender::new(SpineStatus::default()),
            ever_connected: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        });
        let callback_shared = Arc::clone(&shared);
        let max_delay = config.max_reconnect_delay;
        let mut options = ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .subscription_capacity(config.subscription_capacity)
            .client_capacity(config.client_capacity)
            .reconnect_delay_callback(move |attempts| {
                let exp = u32::try_from(attempts).unwrap_or(u32::MAX).min(16);
                max_delay.min(Duration::from_millis(2_u64.saturating_pow(exp)))
            })
            .event_callback(move |event| {
                let shared = Arc::clone(&callback_shared);
                async move { shared.on_event(&event) }
            });
        if let Some(name) = &config.name {
            options = options.name(name);
        }
        let client = tokio::time::timeout(config.connect_timeout, options.connect(addrs))
            .await
            .map_err(|_| connect_error("timed out".into()))?
            .map_err(|e| connect_error(e.to_string()))?;
        shared.mark_connected();
        let keeps_history = config.history.default.is_some()
            || config.history.tenants.values().any(Option::is_some);
        let history = if keeps_history {
            let history = JetStreamHistory::new(
                client.clone(),
                config.history.clone(),
                config.round_trip_timeout,
            );
            history
                .ensure_configured()
                .await
                .map_err(|e| connect_error(format!("{e} (history needs JetStream)")))?;
            Some(Arc::new(history))
        } else {
            None
        };
        Ok(Self {
            client,
            shared,
            barrier_timeout: config.round_trip_timeout,
            history,
        })
    }

    /// A round trip through the server: everything this connection sent before has been processed
    /// by the server when it returns. async-nats's `flush` only empties the socket buffer, so this
    /// publishes to a fresh inbox the connection itself subscribes to, and waits for the echo.
    async fn barrier(&self) -> Result<(), String> {
        let inbox = self.client.new_inbox();
        let mut echo = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| e.to_string())?;
        self.client
            .publish(inbox, Bytes::new())
            .await
            .map_err(|e| e.to_string())?;
        match tokio::time::timeout(self.barrier_timeout, echo.next()).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err("connection closed".into()),
            Err(_) => Err(format!(
                "no round trip through the server within {:?}",
                self.barrier_timeout
            )),
        }
    }

    /// The tenant's history stream, when the subject is a room of a tenant that keeps history.
    async fn history_stream(
        &self,
        subject: &Subject,
    ) -> Result<Option<Arc<crate::jetstream::TenantStream>>, String> {
        let (Some(history), Some(tenant), SubjectKind::Room(_)) =
            (&self.history, subject.tenant(), subject.kind())
        else {
            return Ok(None);
        };
        history.stream(tenant).await.map_err(|e| e.to_string())
    }

    /// Sends a room message of a tenant that keeps history through `JetStream`; `None` when the
    /// subject is not such a room (publish it on core NATS).
    async fn send_stored(
        &self,
        subject: &Subject,
        map: HeaderMap,
        payload: Bytes,
    ) -> Result<Option<Receipt>, SpineError> {
        let publish_error = |reason: String| SpineError::Publish {
            subject: subject.as_str().to_owned(),
            reason,
        };
        let (Some(_), Some(history)) = (
            self.history_stream(subject).await.map_err(publish_error)?,
            &self.history,
        ) else {
            return Ok(None);
        };
        let stored = history
            .publish(subject, map, payload)
            .await
            .map_err(publish_error)?;
        let name = subject.as_str().to_owned();
        let receipt: Receipt = Box::pin(async move {
            stored.await.map_err(|reason| SpineError::Publish {
                subject: name,
                reason,
            })
        });
        Ok(Some(receipt))
    }

    /// The underlying client, for `JetStream` and other NATS-only features (the audit stream).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }
}

fn to_nats_headers(headers: &Headers) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    for (name, value) in headers.iter() {
        let name = HeaderName::try_from(name).map_err(|e| e.to_string())?;
        let value = value.parse::<HeaderValue>().map_err(|e| e.to_string())?;
        map.insert(name, value);
    }
    Ok(map)
}

fn from_nats_headers(map: Option<&HeaderMap>) -> Headers {
    let mut headers = Headers::new();
    for (name, values) in map.into_iter().flat_map(HeaderMap::iter) {
        // The server's own headers (JetStream's republish metadata) are not the publisher's.
        if AsRef::<str>::as_ref(name).starts_with("Nats-") {
            continue;
        }
        if let Some(value) = values.first() {
            // Our own publishes are valid; anything else (a foreign publisher) is skipped, not trusted.
            if headers.insert(name.as_ref(), value.as_str()).is_err() {
                tracing::debug!("skipped a header outside the header grammar");
            }
        }
    }
    headers
}

impl Spine for NatsSpine {
    fn publish<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), SpineError>> {
        let span = publish_span(subject, &payload);
        async move {
            let publish_error = |reason: String| SpineError::Publish {
                subject: subject.as_str().to_owned(),
                reason,
            };
            let map = to_nats_headers(&headers).map_err(publish_error)?;
            if let Some(stored) = self
                .send_stored(subject, map.clone(), payload.clone())
                .await?
            {
                return stored.await;
            }
            self.client
                .publish_with_headers(subject.as_str().to_owned(), map, payload)
                .await
                .map_err(|e| publish_error(e.to_string()))
        }
        .instrument(span)
        .boxed()
    }

    fn publish_stored<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Receipt, SpineError>> {
        let span = publish_span(subject, &payload);
        async move {
            let map = to_nats_headers(&headers).map_err(|reason| SpineError::Publish {
                subject: subject.as_str().to_owned(),
                reason,
            })?;
            if let Some(stored) = self.send_stored(subject, map, payload.clone()).await? {
                return Ok(stored);
            }
            self.publish(subject, headers, payload).await?;
            Ok(stored_already())
        }
        .instrument(span)
        .boxed()
    }

    fn subscribe<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Subscription, SpineError>> {
        async move {
            let subscribe_error = |reason: String| SpineError::Subscribe {
                subject: subject.as_str().to_owned(),
                reason,
            };
            let stream = self
                .history_stream(subject)
                .await
                .map_err(subscribe_error)?;
            // A room that keeps history is read from the stream's republished copies.
            let wire_subject = match (&stream, subject.tenant(), subject.room_name()) {
                (Some(_), Some(tenant), Some(room)) => Subject::room_live(tenant, room),
                _ => subject.clone(),
            };
            let subscriber = self
                .client
                .subscribe(wire_subject.as_str().to_owned())
                .await
                .map_err(|e| subscribe_error(e.to_string()))?;
            // The server handles a connection's operations in order: once the barrier is back,
            // it has registered this interest.
            self.barrier().await.map_err(subscribe_error)?;
            let ours = subject.clone();
            let messages = subscriber.map(move |m| {
                let stored = stream
                    .as_ref()
                    .and_then(|stream| JetStreamHistory::stored(stream, m.headers.as_ref()));
                let message = Message {
                    subject: ours.clone(),
                    headers: from_nats_headers(m.headers.as_ref()),
                    payload: m.payload,
                    stored,
                };
                trace_receive(&message);
                message
            });
            Ok(Subscription::new(
                subject.clone(),
                StreamExt::boxed(messages),
            ))
        }
        .instrument(tracing::debug_span!(
            "spine.subscribe",
            subject = subject.as_str()
        ))
        .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SpineError>> {
        async move {
            self.barrier()
                .await
                .map_err(|reason| SpineError::Flush { reason })
        }
        .boxed()
    }

    fn status(&self) -> SpineStatus {
        *self.shared.status.borrow()
    }

    fn watch_status(&self) -> watch::Receiver<SpineStatus> {
        self.shared.status.subscribe()
    }

    fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    fn history(&self) -> Option<&dyn History> {
        Some(self)
    }
}

impl History for NatsSpine {
    fn read<'a>(
        &'a self,
        room: &'a Subject,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, HistoryError>> {
        async move {
            let Some(history) = &self.history else {
                return Err(HistoryError::Disabled {
                    tenant: room
                        .tenant()
                        .map(|t| t.as_str().to_owned())
                        .unwrap_or_default(),
                });
            };
            history.read(room, query).await
        }
        .instrument(tracing::debug_span!(
            "spine.history_read",
            subject = room.as_str()
        ))
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_masks_credentials_in_urls() {
        assert_eq!(
            masked_url("nats://alice:s3cret@n1:4222"),
            "nats://***@n1:4222"
        );
        assert_eq!(masked_url("tls://token@n2:4222/x"), "tls://***@n2:4222/x");
        assert_eq!(masked_url("nats://n3:4222"), "nats://n3:4222");
        let config = NatsConfig::new(["nats://alice:s3cret@n1:4222", "nats://n2:4222"]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("alice"), "{shown}");
        assert!(shown.contains("nats://***@n1:4222"), "{shown}");
        assert!(shown.contains("nats://n2:4222"), "{shown}");
    }
}

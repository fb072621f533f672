//! The NATS history: one `JetStream` stream per tenant on its room subjects, republishing every stored
//! message with its sequence to the tenant's live subjects (`specs/history.md`).
//!
//! Stream `ARQON_HISTORY_<tenant>`: subjects `arqon.v1.<tenant>.room.*`, `max_msgs_per_subject` =
//! the per-room cap, `max_bytes` and `max_age` tenant-wide, discard old, file storage, R3 in a
//! cluster of three or more, republish to `arqon.v1.<tenant>.live.*`. Created or updated at start
//! for the configured tenants and on first use for the others. Publishes go through `JetStream`
//! with a `Nats-Msg-Id`, retried until acknowledged or the round-trip timeout passes, so a leader
//! election loses nothing and stores nothing twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arqon_core::subject::{Subject, SubjectKind, room_history_filter};
use arqon_proto::names::TenantId;
use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use async_nats::jetstream::stream::{Config, DiscardPolicy, Republish, StorageType};
use async_nats::jetstream::{self, Context};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use tokio::sync::Mutex;

use crate::history::{
    HistoryConfig, HistoryError, HistoryPage, HistoryQuery, Retention, Stored, StoredMessage, page,
};

/// Messages fetched per pull request while reading.
const READ_BATCH: usize = 1000;

/// One tenant's stream.
pub(crate) struct TenantStream {
    name: String,
    retention: Retention,
    epoch: RwLock<Arc<str>>,
}

impl TenantStream {
    fn epoch(&self) -> Arc<str> {
        Arc::clone(&self.epoch.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn set_epoch(&self, epoch: Arc<str>) {
        *self.epoch.write().unwrap_or_else(PoisonError::into_inner) = epoch;
    }
}

/// The tenants' streams of one NATS connection.
pub(crate) struct JetStreamHistory {
    js: Context,
    client: async_nats::Client,
    config: HistoryConfig,
    streams: Mutex<HashMap<TenantId, Arc<TenantStream>>>,
    timeout: Duration,
    nonce: String,
    sent: AtomicU64,
}

fn unavailable(reason: impl std::fmt::Display) -> HistoryError {
    HistoryError::Unavailable {
        reason: reason.to_string(),
    }
}

fn epoch_of(info: &jetstream::stream::Info) -> Arc<str> {
    Arc::from(format!("j{:x}", info.created.unix_timestamp_nanos()))
}

/// The stream's name for a tenant (tenant ids hold no character a stream name forbids).
pub(crate) fn stream_name(tenant: &TenantId) -> String {
    format!("ARQON_HISTORY_{}", tenant.as_str())
}

impl JetStreamHistory {
    pub(crate) fn new(
        client: async_nats::Client,
        config: HistoryConfig,
        timeout: Duration,
    ) -> Self {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(timeout.min(Duration::from_secs(2)));
        let nonce = client
            .new_inbox()
            .rsplit('.')
            .next()
            .unwrap_or("n")
            .to_owned();
        Self {
            js,
            client,
            config,
            streams: Mutex::new(HashMap::new()),
            timeout,
            nonce,
            sent: AtomicU64::new(0),
        }
    }

    /// Creates or updates the streams of every tenant named in the configuration.
    pub(crate) async fn ensure_configured(&self) -> Result<(), HistoryError> {
        for tenant in self.config.tenants.keys() {
            self.stream(tenant).await?;
        }
        Ok(())
    }

    fn replicas(&self) -> usize {
        if self.config.replicas > 0 {
            return self.config.replicas;
        }
        auto_replicas(&self.client)
    }

    /// The tenant's stream, created or updated on first use; `None` when it keeps no history.
    pub(crate) async fn stream(
        &self,
        tenant: &TenantId,
    ) -> Result<Option<Arc<TenantStream>>, HistoryError> {
        let Some(retention) = self.config.retention(tenant) else {
            return Ok(None);
        };
        let mut streams = self.streams.lock().await;
        if let Some(stream) = streams.get(tenant) {
            return Ok(Some(Arc::clone(stream)));
        }
        let name = stream_name(tenant);
        let (rooms, live) = room_history_filter(tenant);
        let config = Config {
            name: name.clone(),
            subjects: vec![rooms.clone()],
            max_messages_per_subject: i64::try_from(retention.max_messages).unwrap_or(i64::MAX),
            max_bytes: i64::try_from(retention.max_bytes).unwrap_or(i64::MAX),
            max_age: retention.max_age,
            discard: DiscardPolicy::Old,
            storage: StorageType::File,
            num_replicas: self.replicas(),
            duplicate_window: Duration::from_mins(2).min(retention.max_age),
            allow_direct: true,
            republish: Some(Republish {
                source: rooms,
                destination: live,
                headers_only: false,
            }),
            ..Config::default()
        };
        let info = self
            .js
            .create_or_update_stream(config)
            .await
            .map_err(|e| unavailable(format!("stream {name}: {e}")))?;
        tracing::info!(stream = %name, replicas = info.config.num_replicas, "history stream ready");
        let stream = Arc::new(TenantStream {
            name,
            retention,
            epoch: RwLock::new(epoch_of(&info)),
        });
        streams.insert(tenant.clone(), Arc::clone(&stream));
        Ok(Some(stream))
    }

    /// Sends a room message through `JetStream` and returns a future that resolves once it is
    /// stored: the first acknowledgement, or a resend with the same `Nats-Msg-Id` (dedup) until one
    /// is stored or the timeout passes.
    pub(crate) async fn publish(
        &self,
        subject: &Subject,
        mut headers: HeaderMap,
        payload: Bytes,
    ) -> Result<BoxFuture<'static, Result<(), String>>, String> {
        let id = format!(
            "{}-{}",
            self.nonce,
            self.sent.fetch_add(1, Ordering::Relaxed)
        );
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        let deadline = Instant::now() + self.timeout;
        let subject = subject.as_str().to_owned();
        let first = self
            .js
            .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
            .await;
        let js = self.js.clone();
        Ok(Box::pin(async move {
            let mut outcome = match first {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            let mut attempt: u32 = 0;
            while let Err(reason) = outcome {
                if Instant::now() >= deadline {
                    return Err(reason);
                }
                attempt = attempt.saturating_add(1);
                tracing::debug!(subject = %subject, attempt, %reason, "history publish retried");
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(10)))).await;
                outcome = match js
                    .publish_with_headers(subject.clone(), headers.clone(), payload.clone())
                    .await
                {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
            }
            Ok(())
        }))
    }

    /// The position of a republished message, from the headers the stream adds.
    pub(crate) fn stored(stream: &TenantStream, headers: Option<&HeaderMap>) -> Option<Stored> {
        let headers = headers?;
        let number = |name: &str| -> Option<u64> {
            headers
                .get_last(name)
                .and_then(|value| value.as_str().parse().ok())
        };
        Some(Stored {
            offset: number("Nats-Sequence")?,
            previous: number("Nats-Last-Sequence").unwrap_or(0),
            epoch: stream.epoch(),
        })
    }

    /// Reads one room.
    pub(crate) async fn read(
        &self,
        room: &Subject,
        query: HistoryQuery,
    ) -> Result<HistoryPage, HistoryError> {
        let (Some(tenant), SubjectKind::Room(_)) = (room.tenant(), room.kind()) else {
            return Err(HistoryError::NotARoom {
                subject: room.as_str().to_owned(),
            });
        };
        let Some(stream_state) = self.stream(tenant).await? else {
            return Err(HistoryError::Disabled {
                tenant: tenant.as_str().to_owned(),
            });
        };
        let stream = self
            .js
            .get_stream_no_info(&stream_state.name)
            .await
            .map_err(unavailable)?;
        let mut with_subjects = stream
            .info_with_subjects(room.as_str())
            .await
            .map_err(unavailable)?;
        let info = with_subjects.info.clone();
        let mut total = 0_u64;
        while let Some(entry) = with_subjects.next().await {
            let (subject, count) = entry.map_err(unavailable)?;
            if subject == room.as_str() {
                total = count as u64;
            }
        }
        let epoch = epoch_of(&info);
        stream_state.set_epoch(Arc::clone(&epoch));
        let last = info.state.last_sequence;
        let first = if info.state.messages == 0 {
            last + 1
        } else {
            info.state.first_sequence
        };
        let (start, end, limit) = match query {
            HistoryQuery::After { offset, limit } => (offset.saturating_add(1), last, limit),
            HistoryQuery::Last { count } => (1, last, count),
            HistoryQuery::Between { after, before } => (
                after.saturating_add(1),
                before.saturating_sub(1).min(last),
                usize::MAX,
            ),
        };
        let (messages, after) = if total == 0 || start > end {
            (Vec::new(), 0)
        } else {
            self.scan(&stream, room, start, end, limit).await?
        };
        Ok(page(
            &epoch,
            first,
            last,
            stream_state.retention.max_messages,
            total,
            messages,
            after,
        ))
    }

    /// Reads the room's messages from `start` up to `last`, keeping the newest `limit`; returns
    /// them and how many there were.
    async fn scan(
        &self,
        stream: &jetstream::stream::Stream<()>,
        room: &Subject,
        start: u64,
        last: u64,
        limit: usize,
    ) -> Result<(Vec<StoredMessage>, u64), HistoryError> {
        let consumer = stream
            .create_consumer(pull::Config {
                filter_subject: room.as_str().to_owned(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: start.max(1),
                },
                ack_policy: AckPolicy::None,
                inactive_threshold: Duration::from_secs(30),
                memory_storage: true,
                num_replicas: 1,
                ..pull::Config::default()
            })
            .await
            .map_err(unavailable)?;
        let name = consumer.cached_info().name.clone();
        let mut remaining = consumer.cached_info().num_pending;
        let mut kept: std::collections::VecDeque<StoredMessage> = std::collections::VecDeque::new();
        let mut seen = 0_u64;
        let result = async {
            while remaining > 0 {
                let mut batch = consumer
                    .fetch()
                    .max_messages(READ_BATCH)
                    .expires(self.timeout.min(Duration::from_secs(5)))
                    .messages()
                    .await
                    .map_err(unavailable)?;
                let mut got = 0;
                while let Some(message) = batch.next().await {
                    let message = message.map_err(unavailable)?;
                    let info = message.info().map_err(unavailable)?;
                    let (offset, pending) = (info.stream_sequence, info.pending);
                    got += 1;
                    remaining = pending;
                    if offset > last {
                        remaining = 0;
                        break;
                    }
                    seen += 1;
                    kept.push_back(StoredMessage {
                        offset,
                        payload: message.message.payload.clone(),
                    });
                    if kept.len() > limit {
                        kept.pop_front();
                    }
                }
                if got == 0 {
                    return Err(unavailable("the history read stalled"));
                }
            }
            Ok(())
        }
        .await;
        if let Err(error) = stream.delete_consumer(&name).await {
            tracing::debug!(%error, "history read consumer not deleted; it expires");
        }
        result.map(|()| (kept.into_iter().collect(), seen))
    }
}

/// How many replicas a stream of ours gets on the servers `client` is connected to: three on a
/// cluster of three or more (one server may be lost), else one. Shared by the history streams, the
/// audit chains and the lease bucket.
pub fn auto_replicas(client: &async_nats::Client) -> usize {
    let info = client.server_info();
    if info.cluster.is_some() && info.connect_urls.len() >= 3 {
        3
    } else {
        1
    }
}

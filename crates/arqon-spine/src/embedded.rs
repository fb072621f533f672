//! The embedded Spine: an in-process bus on tokio channels, the single-node default when no NATS URL is set.
//!
//! Each subscription owns one bounded FIFO queue, so per publisher and subject the order is the
//! publish order. A publish never waits: when a subscription's queue is full the message is dropped
//! for that subscription only and counted (the NATS slow-consumer rule), so one stalled reader
//! cannot slow a publisher or the other readers.
//!
//! With history on for a tenant, a room publish is appended to the tenant's log (`log.rs`) and
//! delivered with its position under the same lock, so delivery order is offset order.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, Weak};
use std::time::Instant;

use arqon_core::subject::SubjectKind;
use arqon_proto::names::TenantId;

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::headers::Headers;
use crate::history::{History, HistoryConfig, HistoryError, HistoryPage, HistoryQuery};
use crate::log::TenantLog;
use crate::spine::{
    Message, Spine, SpineError, SpineStatus, Subscription, publish_span, trace_receive,
};
use arqon_core::subject::Subject;

/// Default queue length of one subscription.
pub const DEFAULT_CAPACITY: usize = 4096;

type Queues = HashMap<Subject, Vec<(u64, mpsc::Sender<Message>)>>;

struct Inner {
    queues: RwLock<Queues>,
    next_id: AtomicU64,
    capacity: usize,
    dropped: AtomicU64,
    status: watch::Sender<SpineStatus>,
    history: HistoryConfig,
    epoch: Arc<str>,
    logs: Mutex<HashMap<TenantId, TenantLog>>,
}

/// The in-process Spine. Cheap to clone; clones share one bus.
#[derive(Clone)]
pub struct EmbeddedSpine {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EmbeddedSpine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedSpine")
            .field("capacity", &self.inner.capacity)
            .finish_non_exhaustive()
    }
}

impl Default for EmbeddedSpine {
    fn default() -> Self {
        Self::new()
    }
}

impl EmbeddedSpine {
    /// A bus whose subscriptions queue up to [`DEFAULT_CAPACITY`] messages.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A bus whose subscriptions queue up to `capacity` messages (at least one), keeping no history.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::with_history(capacity, HistoryConfig::default())
    }

    /// A bus that keeps each tenant's history as `history` says. The epoch is new for every bus:
    /// a restarted node has lost its history, and its clients learn so.
    pub fn with_history(capacity: usize, history: HistoryConfig) -> Self {
        let epoch: Arc<str> = Arc::from(format!(
            "m{:016x}",
            RandomState::new().hash_one(Instant::now())
        ));
        let connected = SpineStatus {
            connected: true,
            reconnects: 0,
        };
        Self {
            inner: Arc::new(Inner {
                queues: RwLock::new(HashMap::new()),
                next_id: AtomicU64::new(0),
                capacity: capacity.max(1),
                dropped: AtomicU64::new(0),
                status: watch::Sender::new(connected),
                history,
                epoch,
                logs: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many live subscriptions `subject` has.
    pub fn subscriber_count(&self, subject: &Subject) -> usize {
        let queues = self
            .inner
            .queues
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        queues.get(subject).map_or(0, Vec::len)
    }
}

impl Inner {
    /// Appends a room message to its tenant's log when the tenant keeps history, and delivers it;
    /// both under the log lock, so deliveries leave in offset order.
    fn publish(&self, mut message: Message) {
        let (Some(tenant), SubjectKind::Room(room)) =
            (message.subject.tenant(), message.subject.kind())
        else {
            return self.deliver(&message);
        };
        let Some(retention) = self.history.retention(tenant) else {
            return self.deliver(&message);
        };
        let mut logs = self.logs.lock().unwrap_or_else(PoisonError::into_inner);
        let log = logs
            .entry(tenant.clone())
            .or_insert_with(|| TenantLog::new(retention, Arc::clone(&self.epoch)));
        message.stored = Some(log.append(room, message.payload.clone(), Instant::now()));
        self.deliver(&message);
    }

    fn deliver(&self, message: &Message) {
        let queues = self.queues.read().unwrap_or_else(PoisonError::into_inner);
        let Some(subscribers) = queues.get(&message.subject) else {
            return;
        };
        for (_, queue) in subscribers {
            if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(message.clone()) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    subject = message.subject.as_str(),
                    "slow subscriber, message dropped"
                );
            }
        }
    }

    fn remove(&self, subject: &Subject, id: u64) {
        let mut queues = self.queues.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(subscribers) = queues.get_mut(subject) {
            subscribers.retain(|(other, _)| *other != id);
            if subscribers.is_empty() {
                queues.remove(subject);
            }
        }
    }
}

/// Removes a subscription's queue from the bus when the subscription is dropped.
struct Registration {
    inner: Weak<Inner>,
    subject: Subject,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            inner.remove(&self.subject, self.id);
        }
    }
}

impl Spine for EmbeddedSpine {
    fn publish<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), SpineError>> {
        let span = publish_span(subject, &payload);
        let message = Message {
            subject: subject.clone(),
            headers,
            payload,
            stored: None,
        };
        span.in_scope(|| self.inner.publish(message));
        async { Ok(()) }.boxed()
    }

    fn subscribe<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Subscription, SpineError>> {
        let (tx, mut rx) = mpsc::channel(self.inner.capacity);
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        self.inner
            .queues
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(subject.clone())
            .or_default()
            .push((id, tx));
        let registration = Registration {
            inner: Arc::downgrade(&self.inner),
            subject: subject.clone(),
            id,
        };
        let messages = futures_util::stream::poll_fn(move |cx| {
            // The stream owns the registration: dropping the subscription deregisters the queue.
            let _owned = &registration;
            rx.poll_recv(cx).map(|next| next.inspect(trace_receive))
        });
        let subscription =
            Subscription::new(subject.clone(), futures_util::StreamExt::boxed(messages));
        async { Ok(subscription) }
            .instrument(tracing::debug_span!(
                "spine.subscribe",
                subject = subject.as_str()
            ))
            .boxed()
    }

    fn flush(&self) -> BoxFuture<'_, Result<(), SpineError>> {
        async { Ok(()) }.boxed()
    }

    fn status(&self) -> SpineStatus {
        *self.inner.status.borrow()
    }

    fn watch_status(&self) -> watch::Receiver<SpineStatus> {
        self.inner.status.subscribe()
    }

    fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    fn history(&self) -> Option<&dyn History> {
        Some(self)
    }
}

impl History for EmbeddedSpine {
    fn read<'a>(
        &'a self,
        room: &'a Subject,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, HistoryError>> {
        let result = (|| {
            let (Some(tenant), SubjectKind::Room(name)) = (room.tenant(), room.kind()) else {
                return Err(HistoryError::NotARoom {
                    subject: room.as_str().to_owned(),
                });
            };
            let Some(retention) = self.inner.history.retention(tenant) else {
                return Err(HistoryError::Disabled {
                    tenant: tenant.as_str().to_owned(),
                });
            };
            let mut logs = self
                .inner
                .logs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let log = logs
                .entry(tenant.clone())
                .or_insert_with(|| TenantLog::new(retention, Arc::clone(&self.inner.epoch)));
            Ok(log.read(name, query, Instant::now()))
        })();
        async move { result }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arqon_core::subject::Subject;
    use arqon_proto::names::{RoomName, TenantId};

    fn subject(room: &str) -> Subject {
        Subject::room(
            &TenantId::parse("acme").unwrap(),
            &RoomName::parse(room).unwrap(),
        )
    }

    // AC-SPINE-10
    #[tokio::test]
    async fn ac_spine_10_full_queue_drops_and_counts_without_blocking() {
        let spine = EmbeddedSpine::with_capacity(2);
        let s = subject("r");
        let mut slow = spine.subscribe(&s).await.unwrap();
        let mut fast = spine.subscribe(&s).await.unwrap();
        for i in 0..5u8 {
            spine
                .publish(&s, Headers::new(), Bytes::from(vec![i]))
                .await
                .unwrap();
            // The fast reader keeps up; the slow one never reads until the end.
            assert_eq!(fast.recv().await.unwrap().payload[..], [i]);
        }
        assert_eq!(spine.dropped(), 3);
        assert_eq!(slow.recv().await.unwrap().payload[..], [0]);
        assert_eq!(slow.recv().await.unwrap().payload[..], [1]);
    }

    // AC-SPINE-7
    #[tokio::test]
    async fn ac_spine_7_drop_releases_the_queue() {
        let spine = EmbeddedSpine::new();
        let s = subject("r");
        let a = spine.subscribe(&s).await.unwrap();
        let b = spine.subscribe(&s).await.unwrap();
        assert_eq!(spine.subscriber_count(&s), 2);
        drop(a);
        assert_eq!(spine.subscriber_count(&s), 1);
        drop(b);
        assert_eq!(spine.subscriber_count(&s), 0);
    }

    #[tokio::test]
    async fn dropping_the_bus_ends_subscriptions() {
        let spine = EmbeddedSpine::new();
        let mut sub = spine.subscribe(&subject("r")).await.unwrap();
        drop(spine);
        assert!(sub.recv().await.is_none());
    }
}

//! Room fan-out: one spine subscription per (tenant, room) per node, shared by its local members.
//!
//! A delivered spine message is already an encoded `Message` envelope (the publishing node encoded
//! it once); the same `Bytes` are queued to every local member. Each member has a bounded queue:
//! when it is full the message is dropped, counted and the member's [`SlowSignal`] is raised, and
//! the member's Session machine decides whether to close.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};

use arqon_core::subject::{Subject, SubjectKind};
use arqon_proto::names::{RoomName, TenantId};
use arqon_spine::{Spine, SpineError};
use bytes::Bytes;
use tokio::sync::{Mutex, Notify, mpsc};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, dec, inc};

/// Raised when messages for a session were dropped; the session steps `slow_consumer` per drop.
#[derive(Debug, Default)]
pub(crate) struct SlowSignal {
    drops: AtomicU32,
    notify: Notify,
}

impl SlowSignal {
    fn raise(&self) {
        self.drops.fetch_add(1, Ordering::Relaxed);
        self.notify.notify_one();
    }

    /// Waits for drops and returns how many happened since the last call.
    pub(crate) async fn wait(&self) -> u32 {
        loop {
            let drops = self.drops.swap(0, Ordering::Relaxed);
            if drops > 0 {
                return drops;
            }
            self.notify.notified().await;
        }
    }
}

/// One local member's outbound side.
#[derive(Clone, Debug)]
pub(crate) struct Outbox {
    pub(crate) queue: mpsc::Sender<Bytes>,
    pub(crate) slow: Arc<SlowSignal>,
}

impl Outbox {
    /// Queues `frame` without waiting; when the queue is full, drops it and raises the signal.
    pub(crate) fn offer(&self, frame: Bytes, metrics: &Metrics) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                inc(&metrics.dropped_slow);
                self.slow.raise();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }
}

/// Longest wait for the spine to confirm a new room subscription.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

type Members = Arc<RwLock<HashMap<u64, Outbox>>>;

struct Room {
    members: Members,
    forward: JoinHandle<()>,
}

/// Every room this node has local members in.
pub(crate) struct Hub {
    spine: Arc<dyn Spine>,
    metrics: Arc<Metrics>,
    rooms: Mutex<HashMap<Subject, Room>>,
}

impl Hub {
    pub(crate) fn new(spine: Arc<dyn Spine>, metrics: Arc<Metrics>) -> Self {
        Self {
            spine,
            metrics,
            rooms: Mutex::new(HashMap::new()),
        }
    }

    /// Adds `session` to the room; the first local member opens the spine subscription, which is in
    /// place when this returns.
    pub(crate) async fn join(
        &self,
        subject: &Subject,
        session: u64,
        outbox: Outbox,
    ) -> Result<(), SpineError> {
        let mut rooms = self.rooms.lock().await;
        if let Some(room) = rooms.get(subject) {
            if let Ok(mut members) = room.members.write() {
                members.insert(session, outbox);
            }
            return Ok(());
        }
        let mut subscription = self.spine.subscribe(subject).await?;
        // The flush makes the interest known to the server before the join is acknowledged. While
        // the spine is disconnected it cannot complete; the subscription is then sent on reconnect,
        // and the room lock is not held hostage.
        if tokio::time::timeout(FLUSH_WAIT, self.spine.flush())
            .await
            .is_err()
        {
            tracing::warn!(
                subject = subject.as_str(),
                "spine flush timed out; subscription pending reconnect"
            );
        }
        let members: Members = Arc::new(RwLock::new(HashMap::from([(session, outbox)])));
        let shared = Arc::clone(&members);
        let metrics = Arc::clone(&self.metrics);
        let forward = tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                let delivery = crate::telemetry::Delivery::start(&message);
                let Ok(members) = shared.read() else { break };
                let mut queued = 0;
                for outbox in members.values() {
                    if outbox.offer(message.payload.clone(), &metrics) {
                        inc(&metrics.delivered);
                        queued += 1;
                    }
                }
                delivery.finish(&metrics.obs, members.len(), queued, crate::clock::now_us());
            }
        });
        inc(&self.metrics.rooms_subscribed);
        rooms.insert(subject.clone(), Room { members, forward });
        Ok(())
    }

    /// Removes `session`; the last local member closes the spine subscription.
    pub(crate) async fn leave(&self, subject: &Subject, session: u64) {
        let mut rooms = self.rooms.lock().await;
        let empty = rooms.get(subject).is_some_and(|room| {
            room.members.write().is_ok_and(|mut members| {
                members.remove(&session);
                members.is_empty()
            })
        });
        if empty && let Some(room) = rooms.remove(subject) {
            // Dropping the forwarder drops the Subscription, which unsubscribes.
            room.forward.abort();
            dec(&self.metrics.rooms_subscribed);
        }
    }

    /// Local members of a room (0 when the node holds no subscription for it).
    pub(crate) async fn local_members(&self, subject: &Subject) -> usize {
        self.rooms
            .lock()
            .await
            .get(subject)
            .and_then(|room| room.members.read().ok().map(|members| members.len()))
            .unwrap_or(0)
    }

    /// This node's rooms of `tenant` with their local member counts, by room name (the admin
    /// console's rooms page).
    pub(crate) async fn tenant_rooms(&self, tenant: &TenantId) -> Vec<(RoomName, usize)> {
        let rooms = self.rooms.lock().await;
        let mut listed: Vec<(RoomName, usize)> = rooms
            .iter()
            .filter(|(subject, _)| subject.tenant() == Some(tenant))
            .filter_map(|(subject, room)| match subject.kind() {
                SubjectKind::Room(name) => Some((
                    name.clone(),
                    room.members.read().map_or(0, |members| members.len()),
                )),
                _ => None,
            })
            .collect();
        listed.sort();
        listed
    }

    /// Queues `frame` to every local member of a room (presence notices); returns how many took it.
    pub(crate) async fn offer_local(&self, subject: &Subject, frame: Bytes) -> usize {
        let rooms = self.rooms.lock().await;
        let Some(members) = rooms.get(subject).and_then(|room| room.members.read().ok()) else {
            return 0;
        };
        members
            .values()
            .filter(|outbox| outbox.offer(frame.clone(), &self.metrics))
            .count()
    }

    pub(crate) fn spine(&self) -> &Arc<dyn Spine> {
        &self.spine
    }
}

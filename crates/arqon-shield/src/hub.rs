//! Room fan-out: one spine subscription per (tenant, room) per node, shared by its local members.
//!
//! A delivered spine message is already an encoded `Message` envelope (the publishing node encoded
//! it once); the same `Bytes` are queued to every local member. Each member has a bounded queue:
//! when it is full the message is dropped, counted and the member's [`SlowSignal`] is raised, and
//! the member's Session machine decides whether to close.
//!
//! With history, a delivered message carries its position: the forwarder merges offset and epoch
//! into the frame once per node (`outbound::with_position`). A recovering member is *gated*: its
//! messages are held until its Session machine has decided the recovery (`OpenGate`); from then on
//! the member only takes messages newer than the decided offset, so the seam between history and
//! live traffic has no duplicate. When a message's room predecessor is newer than the last one
//! forwarded (a NATS reconnect lost some), the forwarder reads the gap from history first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use arqon_core::subject::{Subject, SubjectKind};
use arqon_proto::names::{RoomName, TenantId};
use arqon_spine::{HistoryQuery, Message, Spine, SpineError, Stored};
use bytes::Bytes;
use tokio::sync::{Mutex, Notify};
use tokio::task::JoinHandle;

use crate::metrics::{Metrics, add, dec, inc};

/// Raised when messages for a session were dropped; the session steps `slow_consumer` per drop.
#[derive(Debug, Default)]
pub(crate) struct SlowSignal {
    drops: AtomicU32,
    notify: Notify,
}

impl SlowSignal {
    pub(crate) fn raise(&self) {
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
    pub(crate) queue: flume::Sender<Bytes>,
    pub(crate) slow: Arc<SlowSignal>,
}

impl Outbox {
    /// Queues `frame` without waiting; when the queue is full, drops it and raises the signal.
    pub(crate) fn offer(&self, frame: Bytes, metrics: &Metrics) -> bool {
        match self.queue.try_send(frame) {
            Ok(()) => true,
            Err(flume::TrySendError::Full(_)) => {
                inc(&metrics.dropped_slow);
                self.slow.raise();
                false
            }
            Err(flume::TrySendError::Disconnected(_)) => false,
        }
    }
}

/// Reads of a live gap tried after the first fails, the n-th after `n × REPAIR_PAUSE`.
const REPAIR_ATTEMPTS: u32 = 8;
const REPAIR_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// Longest wait for the spine to confirm a new room subscription.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A held message: its offset (`None` without history) and its frame.
type Held = (Option<u64>, Bytes);

/// One local member of a room.
#[derive(Debug)]
struct Member {
    outbox: Outbox,
    /// Only messages of this epoch newer than this offset are taken (set by `OpenGate`).
    floor: Option<(Arc<str>, u64)>,
    /// While recovering: the messages held for the member.
    gate: Option<Arc<std::sync::Mutex<Vec<Held>>>>,
}

impl Member {
    /// Whether the member takes a message at `stored`.
    fn takes(&self, stored: Option<&Stored>) -> bool {
        match (&self.floor, stored) {
            (Some((epoch, floor)), Some(stored)) => {
                *epoch != stored.epoch || stored.offset > *floor
            }
            _ => true,
        }
    }
}

type Members = Arc<RwLock<HashMap<u64, Member>>>;

/// The epoch and offset of the last message a room's forwarder handled.
type Last = Arc<std::sync::Mutex<Option<(Arc<str>, u64)>>>;

struct Room {
    members: Members,
    last: Last,
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
    /// place when this returns. A `gated` member's messages are held until [`Hub::open_gate`].
    pub(crate) async fn join(
        &self,
        subject: &Subject,
        session: u64,
        outbox: Outbox,
        gated: bool,
    ) -> Result<(), SpineError> {
        let member = Member {
            outbox,
            floor: None,
            gate: gated.then(Arc::default),
        };
        let mut rooms = self.rooms.lock().await;
        if let Some(room) = rooms.get(subject) {
            if let Ok(mut members) = room.members.write() {
                members.insert(session, member);
            }
            return Ok(());
        }
        let subscription = self.spine.subscribe(subject).await?;
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
        let members: Members = Arc::new(RwLock::new(HashMap::from([(session, member)])));
        let last = Last::default();
        let forwarder = Forwarder {
            members: Arc::clone(&members),
            metrics: Arc::clone(&self.metrics),
            spine: Arc::clone(&self.spine),
            subject: subject.clone(),
            last: Arc::clone(&last),
        };
        let forward = tokio::spawn(forwarder.run(subscription));
        inc(&self.metrics.rooms_subscribed);
        rooms.insert(
            subject.clone(),
            Room {
                members,
                last,
                forward,
            },
        );
        Ok(())
    }

    /// Ends a member's hold: delivers the held messages newer than `after` (of `epoch`), in order,
    /// waiting for queue space, then lets live messages through, from then on only those newer
    /// than `after`.
    pub(crate) async fn open_gate(
        &self,
        subject: &Subject,
        session: u64,
        floor: Option<(Arc<str>, u64)>,
    ) {
        let Some((members, last)) = self
            .rooms
            .lock()
            .await
            .get(subject)
            .map(|room| (Arc::clone(&room.members), Arc::clone(&room.last)))
        else {
            return;
        };
        // A room subscription that has forwarded nothing yet starts its gap watch at the join
        // point: a live message lost before the subscription's interest reached the whole cluster
        // is then read from history when the next one arrives.
        if let Some(floor) = &floor {
            let mut last = last.lock().unwrap_or_else(PoisonError::into_inner);
            if last.is_none() {
                *last = Some(floor.clone());
            }
        }
        let Some((gate, queue)) = members.write().ok().and_then(|mut members| {
            let member = members.get_mut(&session)?;
            member.floor.clone_from(&floor);
            Some((member.gate.clone()?, member.outbox.queue.clone()))
        }) else {
            return;
        };
        let after = |offset: Option<u64>| match (&floor, offset) {
            (Some((_, floor)), Some(offset)) => offset > *floor,
            _ => true,
        };
        loop {
            let held = std::mem::take(&mut *gate.lock().unwrap_or_else(PoisonError::into_inner));
            if held.is_empty() {
                // Under the members lock no forwarder can add to the gate: close it if still empty.
                let Ok(mut members) = members.write() else {
                    return;
                };
                let Some(member) = members.get_mut(&session) else {
                    return;
                };
                if gate.lock().map_or(true, |g| g.is_empty()) {
                    member.gate = None;
                    return;
                }
                continue;
            }
            for (offset, frame) in held {
                if after(offset) && queue.send_async(frame).await.is_err() {
                    return;
                }
                inc(&self.metrics.delivered);
            }
        }
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
            .filter(|member| member.outbox.offer(frame.clone(), &self.metrics))
            .count()
    }

    pub(crate) fn spine(&self) -> &Arc<dyn Spine> {
        &self.spine
    }
}

/// Forwards one room subscription to the room's local members.
struct Forwarder {
    members: Members,
    metrics: Arc<Metrics>,
    spine: Arc<dyn Spine>,
    subject: Subject,
    /// The offset of the last message forwarded (in its epoch), for gap repair.
    last: Last,
}

impl Forwarder {
    async fn run(self, mut subscription: arqon_spine::Subscription) {
        while let Some(message) = subscription.recv().await {
            if let Some(stored) = &message.stored {
                let last = self
                    .last
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                self.repair(last, stored).await;
                *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some((Arc::clone(&stored.epoch), stored.offset));
            }
            let frame = positioned(&message.payload, message.stored.as_ref());
            if !self.forward(&message, &frame) {
                break;
            }
        }
    }

    /// Fills a gap before `stored` from history: the messages after the last one forwarded and
    /// before this one.
    async fn repair(&self, last: Option<(Arc<str>, u64)>, stored: &Stored) {
        let last = match last {
            Some((epoch, last)) if epoch == stored.epoch => Some(last),
            _ => None,
        };
        let Some(from) = arqon_core::history::gap(last, stored.previous) else {
            return;
        };
        let Some(history) = self.spine.history() else {
            return;
        };
        inc(&self.metrics.history_reads);
        let query = HistoryQuery::Between {
            after: from - 1,
            before: stored.offset,
        };
        // The store may be failing over (the gap's cause, often): retry for a while, in order.
        let mut read = history.read(&self.subject, query).await;
        for attempt in 1..=REPAIR_ATTEMPTS {
            if read.is_ok() {
                break;
            }
            inc(&self.metrics.history_read_failures);
            tokio::time::sleep(REPAIR_PAUSE * attempt).await;
            read = history.read(&self.subject, query).await;
        }
        match read {
            Ok(page) => {
                inc(&self.metrics.live_gaps_repaired);
                tracing::info!(
                    subject = self.subject.as_str(),
                    from,
                    to = stored.offset,
                    "live gap filled from history"
                );
                for missed in page
                    .messages
                    .into_iter()
                    .filter(|m| m.offset < stored.offset)
                {
                    let filled = Message {
                        subject: self.subject.clone(),
                        headers: arqon_spine::Headers::new(),
                        stored: Some(Stored {
                            offset: missed.offset,
                            previous: 0,
                            epoch: Arc::clone(&stored.epoch),
                        }),
                        payload: missed.payload,
                    };
                    let frame = positioned(&filled.payload, filled.stored.as_ref());
                    self.forward(&filled, &frame);
                }
            }
            Err(error) => {
                inc(&self.metrics.history_read_failures);
                tracing::warn!(subject = self.subject.as_str(), %error, "live gap not filled");
            }
        }
    }

    /// Offers one message to every member; false once the member map is gone.
    fn forward(&self, message: &Message, frame: &Bytes) -> bool {
        let delivery = crate::telemetry::Delivery::start(message, &self.metrics.obs);
        let Ok(members) = self.members.read() else {
            return false;
        };
        let mut queued = 0;
        let mut delivered = 0;
        let offset = message.stored.as_ref().map(|s| s.offset);
        for member in members.values() {
            if !member.takes(message.stored.as_ref()) {
                continue;
            }
            if let Some(gate) = &member.gate {
                gate.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((offset, frame.clone()));
                queued += 1;
            } else if member.outbox.offer(frame.clone(), &self.metrics) {
                delivered += 1;
                queued += 1;
            }
        }
        // One add per message, not per member: the counter is shared by every forwarder.
        add(&self.metrics.delivered, delivered);
        delivery.finish(
            &self.metrics.obs,
            members.len(),
            queued,
            crate::clock::now_us(),
        );
        true
    }
}

/// The frame to deliver: the stored envelope with its position merged in, when it has one.
pub(crate) fn positioned(payload: &Bytes, stored: Option<&Stored>) -> Bytes {
    match stored {
        Some(stored) => arqon_proto::outbound::with_position(payload, stored.offset, &stored.epoch),
        None => payload.clone(),
    }
}

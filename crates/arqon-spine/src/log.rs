//! The embedded history: one bounded in-memory log per tenant, numbered and evicted like a
//! `JetStream` stream (one sequence per tenant, per-room count cap, tenant byte cap, max age).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use arqon_proto::names::RoomName;
use bytes::Bytes;

use crate::history::{HistoryPage, HistoryQuery, Retention, Stored, StoredMessage, page};

struct Entry {
    offset: u64,
    payload: Bytes,
    at: Instant,
}

/// One tenant's log.
///
/// Each room keeps its messages in a queue in offset order, so an append and the eviction of a
/// room's oldest message touch only the ends of one queue. `oldest` holds every room's oldest
/// message by offset, so the tenant's oldest (for the byte cap and max age) is its first key.
pub(crate) struct TenantLog {
    retention: Retention,
    epoch: Arc<str>,
    last: u64,
    bytes: u64,
    rooms: HashMap<RoomName, VecDeque<Entry>>,
    /// Each room's oldest retained offset → the room and when that message was appended.
    oldest: BTreeMap<u64, (RoomName, Instant)>,
}

impl TenantLog {
    pub(crate) fn new(retention: Retention, epoch: Arc<str>) -> Self {
        Self {
            retention,
            epoch,
            last: 0,
            bytes: 0,
            rooms: HashMap::new(),
            oldest: BTreeMap::new(),
        }
    }

    /// Appends a message and returns its position.
    pub(crate) fn append(&mut self, room: &RoomName, payload: Bytes, now: Instant) -> Stored {
        self.expire(now);
        self.last += 1;
        let offset = self.last;
        self.bytes += payload.len() as u64;
        let entries = match self.rooms.get_mut(room) {
            Some(entries) => entries,
            None => self.rooms.entry(room.clone()).or_default(),
        };
        let previous = entries.back().map_or(0, |entry| entry.offset);
        if entries.is_empty() {
            self.oldest.insert(offset, (room.clone(), now));
        }
        entries.push_back(Entry {
            offset,
            payload,
            at: now,
        });
        // Per room: the oldest of the room goes first.
        while entries.len() as u64 > self.retention.max_messages {
            let Some(gone) = entries.pop_front() else {
                break;
            };
            self.bytes -= gone.payload.len() as u64;
            self.oldest.remove(&gone.offset);
            if let Some(next) = entries.front() {
                self.oldest.insert(next.offset, (room.clone(), next.at));
            }
        }
        if entries.is_empty() {
            self.rooms.remove(room);
        }
        // Tenant-wide: the oldest of the tenant goes first.
        while self.bytes > self.retention.max_bytes {
            if !self.evict_oldest() {
                break;
            }
        }
        Stored {
            offset,
            previous,
            epoch: Arc::clone(&self.epoch),
        }
    }

    /// Reads one room.
    pub(crate) fn read(
        &mut self,
        room: &RoomName,
        query: HistoryQuery,
        now: Instant,
    ) -> HistoryPage {
        self.expire(now);
        let first = self.oldest.keys().next().copied().unwrap_or(self.last + 1);
        let empty = VecDeque::new();
        let entries = self.rooms.get(room).unwrap_or(&empty);
        let total = entries.len();
        let (start, end, limit) = match query {
            HistoryQuery::After { offset, limit } => (
                entries.partition_point(|e| e.offset <= offset),
                total,
                limit,
            ),
            HistoryQuery::Last { count } => (0, total, count),
            HistoryQuery::Between { after, before } => (
                entries.partition_point(|e| e.offset <= after),
                entries.partition_point(|e| e.offset < before),
                usize::MAX,
            ),
        };
        let after = end.saturating_sub(start);
        let skip = start + after.saturating_sub(limit);
        let messages = entries
            .iter()
            .take(end)
            .skip(skip)
            .map(|entry| StoredMessage {
                offset: entry.offset,
                payload: entry.payload.clone(),
            })
            .collect();
        page(
            &self.epoch,
            first,
            self.last,
            self.retention.max_messages,
            total as u64,
            messages,
            after as u64,
        )
    }

    fn expire(&mut self, now: Instant) {
        while self
            .oldest
            .first_key_value()
            .is_some_and(|(_, (_, at))| now.duration_since(*at) > self.retention.max_age)
        {
            if !self.evict_oldest() {
                break;
            }
        }
    }

    /// Drops the tenant's oldest message; false when the log is empty.
    fn evict_oldest(&mut self) -> bool {
        let Some((offset, (room, _))) = self.oldest.pop_first() else {
            return false;
        };
        let Some(entries) = self.rooms.get_mut(&room) else {
            return true;
        };
        if entries.front().is_some_and(|entry| entry.offset == offset)
            && let Some(gone) = entries.pop_front()
        {
            self.bytes -= gone.payload.len() as u64;
        }
        match entries.front() {
            Some(next) => {
                self.oldest.insert(next.offset, (room, next.at));
            }
            None => {
                self.rooms.remove(&room);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn room(name: &str) -> RoomName {
        RoomName::parse(name).unwrap()
    }

    fn log(max_messages: u64, max_bytes: u64) -> TenantLog {
        TenantLog::new(
            Retention {
                max_messages,
                max_bytes,
                max_age: Duration::from_mins(1),
            },
            Arc::from("e"),
        )
    }

    #[test]
    fn offsets_are_one_sequence_per_tenant_and_previous_is_per_room() {
        let now = Instant::now();
        let mut log = log(10, 1000);
        let a1 = log.append(&room("a"), Bytes::from_static(b"1"), now);
        let b1 = log.append(&room("b"), Bytes::from_static(b"2"), now);
        let a2 = log.append(&room("a"), Bytes::from_static(b"3"), now);
        assert_eq!((a1.offset, a1.previous), (1, 0));
        assert_eq!((b1.offset, b1.previous), (2, 0));
        assert_eq!((a2.offset, a2.previous), (3, 1));
        let page = log.read(
            &room("a"),
            HistoryQuery::After {
                offset: 1,
                limit: 10,
            },
            now,
        );
        assert_eq!(page.read.offsets, vec![3]);
        assert_eq!((page.read.retained_after, page.read.retained_total), (1, 2));
    }

    #[test]
    fn the_room_cap_and_the_byte_cap_evict_oldest_first() {
        let now = Instant::now();
        let mut log = log(2, 1000);
        for _ in 0..3 {
            log.append(&room("a"), Bytes::from_static(b"x"), now);
        }
        let page = log.read(&room("a"), HistoryQuery::Last { count: 10 }, now);
        assert_eq!(page.read.offsets, vec![2, 3]);
        let mut small = self::log(10, 2);
        for _ in 0..3 {
            small.append(&room("a"), Bytes::from_static(b"x"), now);
        }
        let page = small.read(&room("a"), HistoryQuery::Last { count: 10 }, now);
        assert_eq!(page.read.offsets, vec![2, 3]);
        assert_eq!(page.read.first_offset, 2);
    }

    #[test]
    fn old_messages_expire() {
        let start = Instant::now();
        let mut log = log(10, 1000);
        log.append(&room("a"), Bytes::from_static(b"x"), start);
        let later = start + Duration::from_secs(61);
        let page = log.read(&room("a"), HistoryQuery::Last { count: 10 }, later);
        assert!(page.messages.is_empty());
        assert_eq!(page.read.first_offset, 2);
    }

    mod property {
        use std::time::Duration;

        use proptest::prelude::*;
        use proptest::test_runner::{Config, RngSeed};

        use super::*;

        fn config() -> Config {
            Config {
                cases: 512,
                rng_seed: RngSeed::Fixed(0x4849_5354_4f52_5900),
                failure_persistence: None,
                ..Config::default()
            }
        }

        proptest! {
            #![proptest_config(config())]

            // AC-HISTORY-4: the recovered rule is sound against the real store: whenever it
            // says recovered, every message of the room published after `since` is in the read,
            // in order, whatever the per-room cap, the tenant's byte cap and the publish mix.
            #[test]
            fn recovered_means_nothing_after_since_was_lost(
                cap in 1_u64..6,
                max_bytes in 2_u64..40,
                rooms in proptest::collection::vec((0_u8..3, 1_usize..4), 1..40),
                since_at in 0_usize..40,
            ) {
                let now = Instant::now();
                let mut log = TenantLog::new(
                    Retention { max_messages: cap, max_bytes, max_age: Duration::from_mins(1) },
                    Arc::from("e"),
                );
                let names = [room("a"), room("b"), room("c")];
                let mut published: Vec<(u8, u64)> = Vec::new();
                for (which, len) in &rooms {
                    let stored = log.append(&names[usize::from(*which)], Bytes::from(vec![0; *len]), now);
                    published.push((*which, stored.offset));
                }
                // The client saw room a up to the message at `since_at` (or nothing).
                let seen: Vec<u64> = published.iter().filter(|(w, _)| *w == 0).map(|(_, o)| *o).collect();
                let since = seen.get(since_at % (seen.len() + 1)).copied().unwrap_or(0);
                let page = log.read(&names[0], HistoryQuery::After { offset: since, limit: 1000 }, now);
                let verdict = arqon_core::history::recover(since, "e", Some(&page.read));
                let missed: Vec<u64> = seen.iter().copied().filter(|o| *o > since).collect();
                if verdict.recovered {
                    prop_assert_eq!(&page.read.offsets, &missed);
                }
                // And what is read is always a suffix of what was missed, in order.
                prop_assert!(missed.ends_with(&page.read.offsets));
            }

            // The log keeps exactly what the retention rules say, checked against the plainest
            // model of them (one list of every retained message, oldest first): the per-room cap,
            // the tenant's byte cap and max age, over any mix of rooms, sizes and clock steps.
            #[test]
            fn the_log_keeps_what_a_plain_list_keeps(
                cap in 1_u64..6,
                max_bytes in 2_u64..40,
                steps in proptest::collection::vec((0_u8..3, 1_usize..4, 0_u64..30), 1..60),
            ) {
                let start = Instant::now();
                let retention = Retention { max_messages: cap, max_bytes, max_age: Duration::from_mins(1) };
                let mut log = TenantLog::new(retention, Arc::from("e"));
                let names = [room("a"), room("b"), room("c")];
                // (room, offset, bytes, at) of every retained message, oldest first.
                let mut model: Vec<(u8, u64, u64, Duration)> = Vec::new();
                let mut clock = Duration::ZERO;
                for (offset, (which, len, tick)) in (1_u64..).zip(&steps) {
                    clock += Duration::from_secs(*tick);
                    let now = start + clock;
                    model.retain(|(_, _, _, at)| clock.saturating_sub(*at) <= retention.max_age);
                    let previous = model.iter().rev().find(|m| m.0 == *which).map_or(0, |m| m.1);
                    model.push((*which, offset, *len as u64, clock));
                    let in_room: Vec<u64> = model.iter().filter(|m| m.0 == *which).map(|m| m.1).collect();
                    if in_room.len() as u64 > cap {
                        let gone = in_room[0];
                        model.retain(|m| m.1 != gone);
                    }
                    while model.iter().map(|m| m.2).sum::<u64>() > max_bytes {
                        model.remove(0);
                    }
                    let stored = log.append(&names[usize::from(*which)], Bytes::from(vec![0; *len]), now);
                    prop_assert_eq!((stored.offset, stored.previous), (offset, previous));
                    for (index, name) in (0_u8..).zip(&names) {
                        let page = log.read(name, HistoryQuery::Last { count: 100 }, now);
                        let kept: Vec<u64> = model.iter().filter(|m| m.0 == index).map(|m| m.1).collect();
                        prop_assert_eq!(&page.read.offsets, &kept);
                        let first = model.first().map_or(offset + 1, |m| m.1);
                        prop_assert_eq!(page.read.first_offset, first);
                    }
                }
            }
        }
    }
}

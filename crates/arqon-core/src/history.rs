//! Recovery decisions (`specs/history.md`): whether a join that carried `since` recovered, which
//! read messages it gets and where its live traffic starts, from the facts a history read returns.
//!
//! Offsets are the tenant history's sequence numbers (a `JetStream` stream sequence, or the embedded
//! log's): strictly increasing within a room and an epoch, not contiguous. Both stores evict
//! oldest-first, tenant-wide (bytes, age) and per room (count). From that the rule follows:
//!
//! - tenant-wide eviction has removed nothing after `since` iff `since + 1 >= first_offset`;
//! - per-room eviction has removed nothing after `since` iff fewer than `room_cap` of the room's
//!   messages after `since` are retained, or one at or before `since` still is (a per-room eviction
//!   after `since` leaves exactly `room_cap` retained after it, all newer, and removes the older ones
//!   first).
//!
//! When both hold and nothing was cut by the recovery limit, the client gets every message it
//! missed. Otherwise `recovered` is false and the client refetches its state.

/// What a history read found for one room, as the store reports it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryRead {
    /// The history's epoch now.
    pub epoch: String,
    /// Oldest offset the tenant's history still holds (`last_offset + 1` when it is empty).
    pub first_offset: u64,
    /// Newest offset of the tenant's history when read: the join point.
    pub last_offset: u64,
    /// The per-room retention cap (most messages kept per room).
    pub room_cap: u64,
    /// The room's retained messages with an offset after the requested one.
    pub retained_after: u64,
    /// The room's retained messages in all.
    pub retained_total: u64,
    /// Offsets of the messages read, oldest first: the newest of those after the requested offset,
    /// at most the recovery limit.
    pub offsets: Vec<u64>,
}

/// The outcome of a recovering join.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Recovery {
    /// Every missed message follows.
    pub recovered: bool,
    /// More were missed than the limit; only the newest follow.
    pub truncated: bool,
    /// How many of the read messages to send (all of them, or none).
    pub count: u32,
    /// The room's position after them, when the read succeeded: the join point.
    pub position: Option<u64>,
    /// Live messages held while reading are delivered when their offset is greater than this.
    pub live_after: u64,
}

/// Decides a recovering join. `since_epoch` empty means the client has no position yet (a first
/// join): it gets the room's position and live traffic, no history. `read` is `None` when the
/// history could not be read (disabled for the tenant, or the store is down): then nothing is
/// recovered and every held live message is delivered.
pub fn recover(since_offset: u64, since_epoch: &str, read: Option<&HistoryRead>) -> Recovery {
    let Some(read) = read else {
        return Recovery {
            recovered: false,
            truncated: false,
            count: 0,
            position: None,
            live_after: 0,
        };
    };
    let same_epoch = !since_epoch.is_empty() && since_epoch == read.epoch;
    let position = Some(read.last_offset);
    if !same_epoch || since_offset > read.last_offset {
        // A first join, a reset history, or a position from the future: start at the join point.
        return Recovery {
            recovered: false,
            truncated: false,
            count: 0,
            position,
            live_after: read.last_offset,
        };
    }
    let tenant_kept = since_offset.saturating_add(1) >= read.first_offset;
    let room_kept =
        read.retained_after < read.room_cap || read.retained_total > read.retained_after;
    let returned = read.offsets.len() as u64;
    let truncated = read.retained_after > returned;
    Recovery {
        recovered: tenant_kept && room_kept && !truncated,
        truncated,
        count: u32::try_from(returned).unwrap_or(u32::MAX),
        position,
        live_after: read.last_offset,
    }
}

/// The first offset of a gap on a live subscription, when a message's predecessor in the room
/// (`previous`, as the store reports it) is newer than the last one delivered.
pub fn gap(last_delivered: Option<u64>, previous: u64) -> Option<u64> {
    match last_delivered {
        Some(last) if previous > last => Some(last + 1),
        _ => None,
    }
}

/// A client's place in one room, as an SDK keeps it across reconnects: what to send as `since`,
/// and which delivered messages are duplicates (`specs/history.md`, AC-HISTORY-9).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RoomCursor {
    /// Epoch and offset of the newest message seen (or the join point).
    position: Option<(String, u64)>,
    /// Recovered messages still to come, and the join point to take after them.
    pending: Option<(u32, u64)>,
}

impl RoomCursor {
    /// What to send as `Join.since`: the position, or an empty epoch for none yet.
    pub fn since(&self) -> (u64, &str) {
        self.position
            .as_ref()
            .map_or((0, ""), |(epoch, offset)| (*offset, epoch.as_str()))
    }

    /// A `Recovery` arrived: `count` recovered messages follow, then the room is at `position`.
    pub fn on_recovery(&mut self, count: u32, position: Option<(String, u64)>) {
        let Some((epoch, offset)) = position else {
            self.pending = None;
            return;
        };
        let same = self.position.as_ref().is_some_and(|(e, _)| *e == epoch);
        if !same {
            // A new history: offsets restart, and nothing before the join point is a duplicate.
            self.position = Some((epoch, if count == 0 { offset } else { 0 }));
        }
        if count == 0 {
            self.advance(offset);
            self.pending = None;
        } else {
            self.pending = Some((count, offset));
        }
    }

    /// A message at (`epoch`, `offset`) arrived; false when the app has already seen it. Messages
    /// without a position (a tenant without history) are always new.
    pub fn on_message(&mut self, epoch: &str, offset: u64) -> bool {
        if epoch.is_empty() {
            return true;
        }
        let fresh = match &self.position {
            Some((seen, last)) if seen == epoch => offset > *last,
            _ => true,
        };
        if fresh {
            self.position = Some((epoch.to_owned(), offset));
        }
        if let Some((left, point)) = self.pending {
            if left <= 1 {
                self.pending = None;
                self.advance(point);
            } else {
                self.pending = Some((left - 1, point));
            }
        }
        fresh
    }

    fn advance(&mut self, offset: u64) {
        if let Some((_, last)) = &mut self.position {
            *last = (*last).max(offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(
        first: u64,
        last: u64,
        retained_after: u64,
        total: u64,
        offsets: &[u64],
    ) -> HistoryRead {
        HistoryRead {
            epoch: "e1".into(),
            first_offset: first,
            last_offset: last,
            room_cap: 100,
            retained_after,
            retained_total: total,
            offsets: offsets.to_vec(),
        }
    }

    // AC-HISTORY-3
    #[test]
    fn ac_history_3_everything_after_since_is_recovered() {
        let r = recover(10, "e1", Some(&read(1, 14, 3, 8, &[11, 13, 14])));
        assert_eq!(
            r,
            Recovery {
                recovered: true,
                truncated: false,
                count: 3,
                position: Some(14),
                live_after: 14
            }
        );
    }

    // AC-HISTORY-4
    #[test]
    fn ac_history_4_tenant_eviction_past_since_is_not_recovered() {
        let r = recover(10, "e1", Some(&read(12, 14, 2, 2, &[13, 14])));
        assert!(!r.recovered);
        assert_eq!(r.count, 2);
        // Exactly at the edge: the message after `since` is the oldest kept.
        assert!(recover(10, "e1", Some(&read(11, 14, 2, 2, &[13, 14]))).recovered);
    }

    // AC-HISTORY-4
    #[test]
    fn ac_history_4_room_eviction_past_since_is_not_recovered() {
        let mut full = read(1, 500, 100, 100, &[]);
        full.offsets = (401..=500).collect();
        assert!(!recover(10, "e1", Some(&full)).recovered);
        // The room is at its cap but an older message is still kept: nothing after since is gone.
        full.retained_total = 101;
        full.room_cap = 101;
        assert!(recover(10, "e1", Some(&full)).recovered);
    }

    // AC-HISTORY-5
    #[test]
    fn ac_history_5_a_recovery_over_the_limit_is_truncated() {
        let r = recover(10, "e1", Some(&read(1, 90, 50, 50, &[80, 85, 90])));
        assert!(r.truncated);
        assert!(!r.recovered);
        assert_eq!(r.count, 3);
    }

    // AC-HISTORY-6
    #[test]
    fn ac_history_6_another_epoch_or_a_first_join_starts_at_the_join_point() {
        for epoch in ["e0", ""] {
            let r = recover(10, epoch, Some(&read(1, 14, 3, 8, &[11, 13, 14])));
            assert_eq!(
                r,
                Recovery {
                    recovered: false,
                    truncated: false,
                    count: 0,
                    position: Some(14),
                    live_after: 14
                }
            );
        }
        // A position newer than the history: the history was reset without a new epoch.
        assert!(!recover(99, "e1", Some(&read(1, 14, 0, 8, &[]))).recovered);
    }

    #[test]
    fn an_unreadable_history_delivers_every_held_message() {
        let r = recover(10, "e1", None);
        assert_eq!(r.live_after, 0);
        assert_eq!(r.position, None);
        assert!(!r.recovered);
    }

    // AC-HISTORY-9
    #[test]
    fn ac_history_9_a_cursor_drops_duplicates_and_resumes_from_the_join_point() {
        let mut cursor = RoomCursor::default();
        assert_eq!(cursor.since(), (0, ""));
        cursor.on_recovery(0, Some(("e1".into(), 10)));
        assert_eq!(cursor.since(), (10, "e1"));
        assert!(cursor.on_message("e1", 12));
        assert!(!cursor.on_message("e1", 12), "a duplicate");
        assert!(!cursor.on_message("e1", 11), "older");
        // Reconnect: two recovered messages, then the join point 20.
        cursor.on_recovery(2, Some(("e1".into(), 20)));
        assert!(cursor.on_message("e1", 15));
        assert!(cursor.on_message("e1", 18));
        assert_eq!(cursor.since(), (20, "e1"));
        assert!(!cursor.on_message("e1", 19));
        // A new epoch: its offsets start again.
        cursor.on_recovery(1, Some(("e2".into(), 3)));
        assert!(cursor.on_message("e2", 2));
        assert_eq!(cursor.since(), (3, "e2"));
        assert!(
            cursor.on_message("", 0),
            "no history, no duplicates to find"
        );
    }

    #[test]
    fn gaps_are_found_from_the_predecessor() {
        assert_eq!(gap(None, 5), None);
        assert_eq!(gap(Some(5), 5), None);
        assert_eq!(gap(Some(5), 3), None);
        assert_eq!(gap(Some(5), 9), Some(6));
    }
}

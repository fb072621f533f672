//! History I/O for the session driver: reading a room's history for a recovering join or a
//! `HistoryRequest`, and building the frames that carry it. The Session machine decides what is
//! sent (`arqon_core::history`); this only reads and encodes.

use std::sync::Arc;

use arqon_core::subject::Subject;
use arqon_proto::names::RoomName;
use arqon_proto::v1::{self, Envelope, Header};
use arqon_proto::{HistoryQuery as WireQuery, decode_envelope, outbound};
use arqon_spine::{HistoryPage, HistoryQuery, Spine, StoredMessage};
use bytes::Bytes;

use crate::metrics::{Metrics, inc};

/// A read page held between the machine's request for it and its decision.
#[derive(Debug)]
pub(crate) struct Held {
    /// The room read.
    pub(crate) room: RoomName,
    /// The request it answers.
    pub(crate) request: u64,
    /// What was read; `None` when the read failed.
    pub(crate) page: Option<HistoryPage>,
}

/// Reads `subject`'s history, counting the read and its failure (logged without payloads).
pub(crate) async fn read(
    spine: &dyn Spine,
    subject: &Subject,
    query: HistoryQuery,
    metrics: &Metrics,
) -> Option<HistoryPage> {
    inc(&metrics.history_reads);
    let Some(history) = spine.history() else {
        inc(&metrics.history_read_failures);
        return None;
    };
    match history.read(subject, query).await {
        Ok(page) => Some(page),
        Err(error) => {
            inc(&metrics.history_read_failures);
            tracing::info!(subject = subject.as_str(), %error, "history read refused");
            None
        }
    }
}

/// The spine query for a client's `HistoryRequest`.
pub(crate) fn query(wire: &WireQuery, limit: usize) -> HistoryQuery {
    match wire {
        WireQuery::Last(count) => HistoryQuery::Last {
            count: usize::try_from(*count).unwrap_or(usize::MAX),
        },
        WireQuery::Since(position) => HistoryQuery::After {
            offset: position.offset,
            limit,
        },
    }
}

/// One stored message as the frame a client receives: the stored envelope with its position.
pub(crate) fn frame(message: &StoredMessage, epoch: &str) -> Bytes {
    outbound::with_position(&message.payload, message.offset, epoch)
}

/// The `HistoryPage` answering a `HistoryRequest`: the newest messages that fit in `max_bytes`.
pub(crate) fn page_envelope(
    header: Header,
    room: &RoomName,
    page: &HistoryPage,
    max_bytes: usize,
) -> Envelope {
    let epoch = &page.read.epoch;
    let mut used = 0;
    let mut kept: Vec<Envelope> = Vec::new();
    let mut truncated = page.read.retained_after > page.messages.len() as u64;
    for message in page.messages.iter().rev() {
        used += message.payload.len() + 16;
        if used > max_bytes {
            truncated = true;
            break;
        }
        match decode_envelope(frame(message, epoch), usize::MAX) {
            Ok(envelope) => kept.push(envelope),
            Err(error) => {
                tracing::warn!(offset = message.offset, %error, "stored envelope skipped");
            }
        }
    }
    kept.reverse();
    let position = Some(outbound::position(page.read.last_offset, epoch));
    outbound::history_page(header, room, kept, position, truncated)
}

/// The `Recovery` frame for a decided recovering join.
pub(crate) fn recovery_envelope(
    header: Header,
    room: &RoomName,
    recovery: &arqon_core::history::Recovery,
    epoch: Option<&Arc<str>>,
) -> Envelope {
    let position: Option<v1::Position> = recovery
        .position
        .zip(epoch)
        .map(|(offset, epoch)| outbound::position(offset, epoch));
    outbound::recovery(
        header,
        room,
        recovery.recovered,
        recovery.truncated,
        recovery.count,
        position,
    )
}

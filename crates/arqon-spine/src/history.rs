//! The interface both history stores implement: the [`History`] trait, its retention settings
//! ([`HistoryConfig`], [`Retention`]), queries and pages, and [`HistoryError`]s (`specs/history.md`).
//!
//! A tenant's history is one log of every room's messages, numbered by one sequence (the offset).
//! On NATS it is a `JetStream` stream per tenant; on the embedded spine an in-memory log per tenant
//! with the same numbering and the same oldest-first eviction, so the recovery rule in
//! `arqon_core::history` holds for both.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use arqon_core::history::HistoryRead;
use arqon_core::subject::Subject;
use arqon_proto::names::TenantId;
use bytes::Bytes;
use futures_util::future::BoxFuture;

/// How much of a tenant's history is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Most messages kept per room.
    pub max_messages: u64,
    /// Most bytes kept for the whole tenant (`JetStream` has no per-subject byte limit).
    pub max_bytes: u64,
    /// Messages older than this are removed.
    pub max_age: Duration,
}

impl Default for Retention {
    /// 10,000 messages per room, 64 MiB per tenant, 10 minutes.
    fn default() -> Self {
        Self {
            max_messages: 10_000,
            max_bytes: 64 * 1024 * 1024,
            max_age: Duration::from_mins(10),
        }
    }
}

/// Which tenants keep history, and how much.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Retention for tenants without their own entry; `None` keeps no history for them.
    pub default: Option<Retention>,
    /// Per tenant: `None` turns history off for that tenant.
    pub tenants: BTreeMap<TenantId, Option<Retention>>,
    /// `JetStream` replicas of each stream; 0 picks 3 in a cluster of three or more, else 1.
    pub replicas: usize,
}

impl HistoryConfig {
    /// The retention of `tenant`, or `None` when it keeps no history.
    pub fn retention(&self, tenant: &TenantId) -> Option<Retention> {
        self.tenants.get(tenant).copied().unwrap_or(self.default)
    }
}

/// Where a live message sits in its tenant's history, as the store reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The message's offset.
    pub offset: u64,
    /// The offset of the room's message before it (0 for none).
    pub previous: u64,
    /// The history's epoch.
    pub epoch: Arc<str>,
}

/// What to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryQuery {
    /// The newest `limit` of the room's messages with an offset greater than `offset`.
    After {
        /// Exclusive lower bound.
        offset: u64,
        /// Most messages returned.
        limit: usize,
    },
    /// The room's newest `count` messages.
    Last {
        /// Most messages returned.
        count: usize,
    },
    /// Every one of the room's messages with `after < offset < before` (filling a live gap).
    Between {
        /// Exclusive lower bound.
        after: u64,
        /// Exclusive upper bound.
        before: u64,
    },
}

/// One stored message: its offset and the encoded envelope as it was published.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMessage {
    /// Its offset.
    pub offset: u64,
    /// The envelope bytes, without the position (the caller merges it in).
    pub payload: Bytes,
}

/// The answer to a read: the facts the recovery rule needs, and the messages, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryPage {
    /// The facts (`read.offsets` lists the messages' offsets).
    pub read: HistoryRead,
    /// The messages read.
    pub messages: Vec<StoredMessage>,
}

/// Why a read failed.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The tenant keeps no history.
    #[error("tenant {tenant} keeps no history")]
    Disabled {
        /// The tenant.
        tenant: String,
    },
    /// The subject is not a room's.
    #[error("{subject} is not a room subject")]
    NotARoom {
        /// The subject.
        subject: String,
    },
    /// The store could not be read or written.
    #[error("history store unavailable: {reason}")]
    Unavailable {
        /// What went wrong.
        reason: String,
    },
}

/// A tenant-scoped message history (`specs/history.md`). Writes happen through [`crate::Spine`]'s
/// publish; this reads.
pub trait History: Send + Sync + 'static {
    /// Reads one room's history. The room's tenant is the subject's; no read crosses it.
    fn read<'a>(
        &'a self,
        room: &'a Subject,
        query: HistoryQuery,
    ) -> BoxFuture<'a, Result<HistoryPage, HistoryError>>;
}

/// Builds a page from the newest `limit` of `after` (oldest first) and the store's facts.
pub(crate) fn page(
    epoch: &str,
    first_offset: u64,
    last_offset: u64,
    room_cap: u64,
    retained_total: u64,
    after: Vec<StoredMessage>,
    retained_after: u64,
) -> HistoryPage {
    let offsets = after.iter().map(|m| m.offset).collect();
    HistoryPage {
        read: HistoryRead {
            epoch: epoch.to_owned(),
            first_offset,
            last_offset,
            room_cap,
            retained_after,
            retained_total,
            offsets,
        },
        messages: after,
    }
}

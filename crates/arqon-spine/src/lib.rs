//! The Spine: tenant-scoped pub/sub over NATS or an embedded in-process bus.
//!
//! Callers hold an `Arc<dyn Spine>` and never know which implementation is behind it:
//! [`NatsSpine`] when a NATS URL is configured, [`EmbeddedSpine`] otherwise. Both pass one
//! conformance suite (`tests/it/spine_conformance.rs`). Subjects come only from
//! [`arqon_core::subject::Subject`]; see `specs/spine.md`.
//!
//! **Why boxed futures.** The implementation is chosen at run time from the configuration and shared
//! by the Shield and the Brain, so the trait must be dyn-compatible; `async fn` in traits is not. An
//! enum would close the set of implementations (tests and benches add their own). The cost is one
//! allocation per publish, small beside a syscall or a channel send.
//!
//! **Where fan-out lives.** One [`Spine::subscribe`] is one bus subscription. The Shield keeps one
//! subscription per room per node, reference-counted by the room's local members, and writes the
//! same bytes to every local socket. The Spine does not count references itself.

mod embedded;
mod headers;
mod history;
mod jetstream;
mod log;
mod nats;
mod spine;

pub use arqon_core::subject::Subject;
pub use bytes::Bytes;
pub use embedded::{DEFAULT_CAPACITY, EmbeddedSpine};
pub use headers::{
    HeaderError, Headers, MAX_HEADER_NAME_LEN, MAX_HEADER_VALUE_LEN, TRACEPARENT, TRACESTATE,
};
pub use history::{
    History, HistoryConfig, HistoryError, HistoryPage, HistoryQuery, Retention, Stored,
    StoredMessage,
};
pub use jetstream::auto_replicas;
pub use nats::{NatsConfig, NatsSpine, server_addrs};
pub use spine::{Message, Receipt, Spine, SpineError, SpineStatus, Subscription};

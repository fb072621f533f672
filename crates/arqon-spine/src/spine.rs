//! The interface both spines implement: the [`Spine`] trait, the [`Message`]s it carries, its
//! [`SpineStatus`] and [`SpineError`]s, and a [`Subscription`] stream.

use std::pin::Pin;
use std::task::{Context, Poll};

use arqon_core::subject::Subject;
use bytes::Bytes;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, Stream, StreamExt};
use tokio::sync::watch;

use crate::headers::Headers;
use crate::history::{History, Stored};

/// One message on the bus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The subject it was published on.
    pub subject: Subject,
    /// Its headers (trace context and the like).
    pub headers: Headers,
    /// The payload, shared, never copied by the Spine.
    pub payload: Bytes,
    /// Its place in the tenant's history, when the tenant keeps one (delivered messages only).
    pub stored: Option<Stored>,
}

/// Connection state of a Spine, as reported by [`Spine::status`] and [`Spine::watch_status`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpineStatus {
    /// Whether the bus is reachable now (always true for the embedded bus).
    pub connected: bool,
    /// How many times the connection was re-established after a loss.
    pub reconnects: u64,
}

/// Why a Spine operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SpineError {
    /// No NATS server could be reached (or the handshake failed) within the timeout.
    #[error("cannot connect to NATS at {urls}: {reason}")]
    Connect {
        /// The configured server URLs, comma-separated.
        urls: String,
        /// What went wrong.
        reason: String,
    },
    /// The bus refused or could not queue a publish.
    #[error("publish on {subject} failed: {reason}")]
    Publish {
        /// The subject.
        subject: String,
        /// What went wrong.
        reason: String,
    },
    /// The bus refused a subscription.
    #[error("subscribe to {subject} failed: {reason}")]
    Subscribe {
        /// The subject.
        subject: String,
        /// What went wrong.
        reason: String,
    },
    /// Waiting for the server to acknowledge everything sent so far failed.
    #[error("flush failed: {reason}")]
    Flush {
        /// What went wrong.
        reason: String,
    },
}

/// Resolves once the bus has stored a message published with [`Spine::publish_stored`] (at once
/// when the bus stores nothing, or stored it before returning).
pub type Receipt = BoxFuture<'static, Result<(), SpineError>>;

/// The receipt of a message stored before its publish returned (or by a bus that stores nothing).
pub(crate) fn stored_already() -> Receipt {
    Box::pin(async { Ok(()) })
}

/// A tenant-scoped publish/subscribe bus. Use it as `Arc<dyn Spine>`.
///
/// Guarantees (`specs/spine.md`): at-most-once delivery; per publisher and subject, publish order;
/// when [`Spine::subscribe`] returns, the bus (for NATS: the connected server) has registered the
/// interest, so a later publish on the same node reaches it.
pub trait Spine: Send + Sync + 'static {
    /// Publishes `payload` with `headers` on `subject`.
    fn publish<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<(), SpineError>>;

    /// Publishes like [`Spine::publish`], returning once the message is sent, with a [`Receipt`]
    /// that resolves when it is stored (history: `JetStream`'s acknowledgement), so a caller can
    /// send more while earlier ones are being stored. Messages sent in order are stored in order,
    /// except that one retried after a store failover may land after later ones.
    fn publish_stored<'a>(
        &'a self,
        subject: &'a Subject,
        headers: Headers,
        payload: Bytes,
    ) -> BoxFuture<'a, Result<Receipt, SpineError>> {
        Box::pin(async move {
            self.publish(subject, headers, payload).await?;
            Ok(stored_already())
        })
    }

    /// Subscribes to exactly `subject`; dropping the [`Subscription`] unsubscribes.
    fn subscribe<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> BoxFuture<'a, Result<Subscription, SpineError>>;

    /// Waits until the bus has processed everything this handle published and subscribed so far.
    fn flush(&self) -> BoxFuture<'_, Result<(), SpineError>>;

    /// The connection state now.
    fn status(&self) -> SpineStatus;

    /// A receiver that changes whenever the connection is lost or re-established.
    fn watch_status(&self) -> watch::Receiver<SpineStatus>;

    /// Messages dropped so far because a subscription's queue was full (slow subscriber).
    fn dropped(&self) -> u64;

    /// The history store behind this bus, when it has one.
    fn history(&self) -> Option<&dyn History> {
        None
    }
}

/// The messages of one subscription, in arrival order. Dropping it unsubscribes.
pub struct Subscription {
    subject: Subject,
    messages: BoxStream<'static, Message>,
}

impl Subscription {
    /// Wraps a message stream; the stream must release its bus interest when dropped.
    pub fn new(subject: Subject, messages: BoxStream<'static, Message>) -> Self {
        Self { subject, messages }
    }

    /// The subscribed subject.
    pub fn subject(&self) -> &Subject {
        &self.subject
    }

    /// The next message; `None` once the Spine is gone.
    pub async fn recv(&mut self) -> Option<Message> {
        self.messages.next().await
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("subject", &self.subject.as_str())
            .finish_non_exhaustive()
    }
}

impl Stream for Subscription {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.poll_next_unpin(cx)
    }
}

/// Records one received message in a `spine.receive` span: subject and size, never the payload.
pub(crate) fn trace_receive(message: &Message) {
    tracing::debug_span!(
        "spine.receive",
        subject = message.subject.as_str(),
        bytes = message.payload.len()
    )
    .in_scope(|| tracing::trace!("received"));
}

/// The `spine.publish` span: subject and size, never the payload or header values.
pub(crate) fn publish_span(subject: &Subject, payload: &Bytes) -> tracing::Span {
    tracing::debug_span!(
        "spine.publish",
        subject = subject.as_str(),
        bytes = payload.len()
    )
}

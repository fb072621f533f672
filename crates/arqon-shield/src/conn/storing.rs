//! Publishes whose ack waits for the spine to store them: the session keeps up to
//! `MAX_STORING` in flight and answers each, in publish order, with its ack or an `INTERNAL` error.

use futures_util::StreamExt as _;

use super::{Driver, Storing, WRITER_GRACE};
use crate::metrics::inc;

impl Driver {
    /// A publish was stored (its ack goes out) or could not be (its error does).
    pub(super) fn stored(&mut self, done: Storing) {
        let metrics = &self.shared.metrics;
        match done.result {
            Ok(()) => {
                inc(&metrics.published);
                self.outbox.offer(done.ack, metrics);
            }
            Err(error) => {
                inc(&metrics.publish_failures);
                metrics.obs.spine_errors.inc("publish");
                metrics.errors_sent.inc("INTERNAL");
                tracing::warn!(session = %self.session_id, %error, "spine publish not stored");
                self.outbox.offer(done.error, metrics);
            }
        }
    }

    /// Whether any publish still waits for its store receipt.
    pub(super) fn storing_any(&self) -> bool {
        self.storing
            .as_ref()
            .is_some_and(|storing| !storing.is_empty())
    }

    /// The next store receipt, in publish order (`None` when none waits).
    pub(super) async fn next_stored(&mut self) -> Option<Storing> {
        self.storing.as_mut()?.next().await
    }

    /// Sends the answers of publishes still being stored, waiting a little for them.
    pub(super) async fn settle(&mut self) {
        while self.storing_any() {
            match tokio::time::timeout(WRITER_GRACE, self.next_stored()).await {
                Ok(Some(done)) => self.stored(done),
                _ => return,
            }
        }
    }
}

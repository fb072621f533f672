//! The trace side of a session's publishes: the `shield.publish` span when the sampler keeps a
//! publish, and the late spans of one it dropped that ended in an error or a policy block.

use arqon_core::session::SessionEvent;

use super::{Driver, Untraced};

impl Driver {
    /// The `shield.publish` span of a publish (continuing the client's trace) when spans are on and
    /// the trace sampler keeps it, else no span.
    pub(super) fn publish_span(&mut self, event: &SessionEvent) -> tracing::Span {
        let SessionEvent::Publish {
            room,
            request,
            payload_len,
            ..
        } = event
        else {
            return tracing::Span::none();
        };
        if !crate::telemetry::message_spans_on() {
            return tracing::Span::none();
        }
        let client = self
            .current
            .as_ref()
            .and_then(|current| current.header.trace.as_ref())
            .map(|trace| (trace.traceparent.as_str(), trace.tracestate.as_str()));
        let parent = client
            .and_then(|(traceparent, _)| crate::telemetry::TraceParent::parse(traceparent))
            .map(|parent| parent.sampled());
        let obs = &self.shared.metrics.obs;
        if obs
            .sample(parent, self.identity.session, *request)
            .is_none()
        {
            self.untraced = Some(Untraced {
                request: *request,
                room: room.clone(),
                bytes: usize::try_from(*payload_len).unwrap_or(usize::MAX),
                started: std::time::Instant::now(),
            });
            return tracing::Span::none();
        }
        crate::telemetry::publish_span(
            self.identity.tenant.as_str(),
            &format!("{}-r{request}", self.session_id),
            room.as_str(),
            usize::try_from(*payload_len).unwrap_or(usize::MAX),
            client,
        )
    }

    /// Makes the spans of the current publish after all, when the sampler dropped it (once).
    pub(super) fn trace_late(
        &mut self,
        request: u64,
        outcome: arqon_core::sampling::Outcome,
        label: &'static str,
    ) {
        let Some(kept) = arqon_core::sampling::TraceSampler::tail(outcome) else {
            return;
        };
        let Some(untraced) = self.untraced.take_if(|u| u.request == request) else {
            return;
        };
        let request_id = format!("{}-r{request}", self.session_id);
        crate::telemetry::late_publish_spans(
            &self.shared.metrics.obs,
            (
                self.identity.tenant.as_str(),
                &request_id,
                untraced.room.as_str(),
                untraced.bytes,
            ),
            kept,
            label,
            untraced.started.elapsed(),
        );
    }
}

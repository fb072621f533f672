//! A publish the Session machine routed: its subject, its envelope (encoded once, with the
//! stamp and trace context), and the spine publish whose store receipt the ack waits for.

use arqon_core::subject::Subject;
use arqon_proto::outbound;
use arqon_proto::v1;
use arqon_spine::{Headers, TRACEPARENT, TRACESTATE};
use tracing::Instrument as _;

use super::Driver;
use crate::metrics::inc;

impl Driver {
    /// The subject of `room` of `tenant`, formatted again only when it is not the last one.
    fn subject_of(
        &mut self,
        tenant: &arqon_proto::names::TenantId,
        room: &arqon_proto::names::RoomName,
    ) -> Subject {
        let cached = self.published_to.as_ref().filter(|subject| {
            subject.tenant() == Some(tenant) && subject.room_name() == Some(room)
        });
        if let Some(subject) = cached {
            return subject.clone();
        }
        let subject = Subject::room(tenant, room);
        self.published_to = Some(subject.clone());
        subject
    }

    pub(super) async fn publish(
        &mut self,
        room: &arqon_proto::names::RoomName,
        request: u64,
        stamp: &arqon_core::session::Stamp,
    ) {
        let Some(current) = self.current.take_if(|current| current.request == request) else {
            return;
        };
        let (payload, content_type) = current.publish.clone().unwrap_or_default();
        // The stamp names this session: its id text is already formatted.
        let formatted;
        let session_id = if stamp.session == self.identity.session {
            &*self.session_id
        } else {
            formatted = format!("{:016x}", stamp.session);
            formatted.as_str()
        };
        let wire_stamp = arqon_proto::Stamp {
            tenant: &stamp.tenant,
            user: &stamp.sender,
            session_id,
            timestamp_us: stamp.timestamp_us,
        };
        let mut header = wire_stamp.header(&current.header, || stamp.default_twist_id.clone());
        let mut headers = Headers::new();
        if let Some(trace) = &current.header.trace {
            let _ = headers.insert(TRACEPARENT, &trace.traceparent);
            if !trace.tracestate.is_empty() {
                let _ = headers.insert(TRACESTATE, &trace.tracestate);
            }
        }
        let subject = self.subject_of(&stamp.tenant, room);
        let span = if self.untraced.is_some() {
            tracing::Span::none()
        } else {
            crate::telemetry::spine_publish_span(subject.as_str(), payload.len())
        };
        crate::telemetry::inject(&span, &mut headers, stamp.timestamp_us);
        if let Some(own) = crate::telemetry::span_traceparent(&span) {
            header.traceparent = own.to_string();
        }
        let frame =
            arqon_proto::encode_envelope(&outbound::message(header, room, payload, content_type));
        // Put the frame back so the ack that follows can echo the request's ids.
        self.current = Some(current);
        match self
            .shared
            .hub
            .spine()
            .publish_stored(&subject, headers, frame)
            .instrument(span)
            .await
        {
            Ok(receipt) => self.unstored = Some((request, receipt)),
            Err(error) => {
                inc(&self.shared.metrics.publish_failures);
                self.shared.metrics.obs.spine_errors.inc("publish");
                tracing::warn!(session = %self.session_id, %error, "spine publish failed");
                self.send_error(v1::ErrorCode::Internal, Some(request), None);
                self.refused = Some(request);
            }
        }
    }
}

//! The session driver's history effects: reading a room's history for the machine, and sending a
//! decided recovery (the `Recovery` frame, then the recovered messages) with backpressure.

use std::time::Duration;

use arqon_core::session::{SessionEffect, SessionEvent};
use arqon_core::subject::Subject;
use bytes::Bytes;

use super::Driver;
use crate::metrics::inc;

/// Longest wait for queue room while sending history to one session.
const HISTORY_SEND_WAIT: Duration = Duration::from_secs(10);

impl Driver {
    /// Executes one of the history effects; returns the event it produces, if any.
    pub(super) async fn execute_history(&mut self, effect: SessionEffect) -> Option<SessionEvent> {
        match effect {
            SessionEffect::FetchHistory {
                room,
                request,
                after,
            } => {
                let query = arqon_spine::HistoryQuery::After {
                    offset: after,
                    limit: self.shared.settings.recovery_limit,
                };
                return Some(self.fetch(room, request, query, true).await);
            }
            SessionEffect::ReadHistory { room, request } => {
                let wire = self
                    .current_for(Some(request))
                    .and_then(|current| current.history.clone())?;
                let query = crate::history::query(&wire, arqon_proto::MAX_HISTORY_LAST as usize);
                return Some(self.fetch(room, request, query, false).await);
            }
            SessionEffect::SendRecovery {
                room,
                request,
                recovery,
            } => self.send_recovery(&room, request, &recovery).await,
            SessionEffect::OpenGate { room, after } => {
                let epoch = self
                    .held
                    .take()
                    .and_then(|held| held.page)
                    .map(|page| std::sync::Arc::<str>::from(page.read.epoch));
                let subject = Subject::room(&self.identity.tenant, &room);
                let floor = epoch.map(|epoch| (epoch, after));
                self.shared
                    .hub
                    .open_gate(&subject, self.identity.session, floor)
                    .await;
            }
            SessionEffect::SendHistory { room, request } => {
                let page = self.held.take().and_then(|held| held.page);
                if let Some(page) = page {
                    let header = self.server_header(Some(request));
                    let envelope = crate::history::page_envelope(
                        header,
                        &room,
                        &page,
                        self.shared.settings.page_bytes,
                    );
                    self.send_waiting(arqon_proto::encode_envelope(&envelope))
                        .await;
                }
            }
            _ => {}
        }
        None
    }

    /// Reads a room's history for the machine and holds the page; returns the machine's answer
    /// event (`HistoryRead` for a recovering join, `HistoryAnswer` for a `HistoryRequest`).
    pub(super) async fn fetch(
        &mut self,
        room: arqon_proto::names::RoomName,
        request: u64,
        query: arqon_spine::HistoryQuery,
        recovering: bool,
    ) -> SessionEvent {
        let subject = Subject::room(&self.identity.tenant, &room);
        let page = crate::history::read(
            self.shared.hub.spine().as_ref(),
            &subject,
            query,
            &self.shared.metrics,
        )
        .await;
        let read = page.as_ref().map(|page| page.read.clone());
        let available = page.is_some();
        self.held = Some(Box::new(crate::history::Held {
            room: room.clone(),
            request,
            page,
        }));
        if recovering {
            SessionEvent::HistoryRead {
                room,
                request,
                read,
            }
        } else {
            SessionEvent::HistoryAnswer {
                room,
                request,
                available,
            }
        }
    }

    /// Sends `Recovery` and then the recovered messages the machine chose, waiting for queue room.
    pub(super) async fn send_recovery(
        &mut self,
        room: &arqon_proto::names::RoomName,
        request: u64,
        recovery: &arqon_core::history::Recovery,
    ) {
        let page = self
            .held
            .as_ref()
            .filter(|held| held.request == request && held.room == *room)
            .and_then(|held| held.page.as_ref());
        let epoch = page.map(|page| std::sync::Arc::<str>::from(page.read.epoch.as_str()));
        let frames: Vec<Bytes> = page
            .map(|page| {
                let count = usize::try_from(recovery.count).unwrap_or(usize::MAX);
                let skip = page.messages.len().saturating_sub(count);
                page.messages[skip..]
                    .iter()
                    .map(|message| crate::history::frame(message, &page.read.epoch))
                    .collect()
            })
            .unwrap_or_default();
        let header = self.server_header(Some(request));
        let envelope = crate::history::recovery_envelope(header, room, recovery, epoch.as_ref());
        if recovery.recovered {
            inc(&self.shared.metrics.recoveries_complete);
        }
        tracing::debug!(
            session = %self.session_id,
            room = room.as_str(),
            recovered = recovery.recovered,
            truncated = recovery.truncated,
            count = recovery.count,
            "recovery decided"
        );
        if !self
            .send_waiting(arqon_proto::encode_envelope(&envelope))
            .await
        {
            return;
        }
        for frame in frames {
            if !self.send_waiting(frame).await {
                return;
            }
            inc(&self.shared.metrics.recovered_messages);
        }
    }

    /// Queues a frame, waiting for room (bounded): history goes out whole or the client is slow.
    pub(super) async fn send_waiting(&mut self, frame: Bytes) -> bool {
        match tokio::time::timeout(HISTORY_SEND_WAIT, self.outbox.queue.send_async(frame)).await {
            Ok(Ok(())) => true,
            Ok(Err(_)) => false,
            Err(_) => {
                inc(&self.shared.metrics.dropped_slow);
                self.outbox.slow.raise();
                tracing::warn!(session = %self.session_id, "client too slow to take its history");
                false
            }
        }
    }
}

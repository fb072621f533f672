//! Presence glue: runs the Brain's presence driver for this node, delivers its notices to the
//! room's local members through the hub, and sends member lists (the joiner's snapshot) to a
//! session. `specs/presence.md` ("Driver").

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use arqon_brain::presence::{
    DeliveryFuture, ListQuery, ListReply, Notice, PresenceDelivery, PresenceDriver,
    PresenceSettings,
};
use arqon_config::Config;
use arqon_core::presence::{Member, MemberCursor, MemberPage, NodeId, SessionId};
use arqon_core::subject::Subject;
use arqon_proto::names::{RoomName, TenantId};
use arqon_proto::outbound;
use arqon_proto::v1::{self, LeaveReason};
use bytes::Bytes;

use crate::clock::now_us;
use crate::hooks::{PresenceHook, PresenceMember};
use crate::hub::Hub;
use crate::hub::Outbox;
use crate::metrics::Metrics;

/// Members per snapshot page sent to a joiner (and the default for a `PresenceRequest`).
pub(crate) const PAGE_SIZE: usize = 256;
/// Longest page a `PresenceRequest` may ask for.
pub(crate) const MAX_PAGE_SIZE: usize = 1024;

/// The node's presence: the Brain driver plus the delivery bound to the node's hub.
pub(crate) struct NodePresence {
    driver: PresenceDriver,
    delivery: Arc<HubDelivery>,
}

impl NodePresence {
    /// Starts the driver for `config`'s node on `spine`; [`NodePresence::bind`] connects the hub.
    pub(crate) fn start(config: &Config, spine: Arc<dyn arqon_spine::Spine>) -> Self {
        let settings = PresenceSettings::new(
            &config.node.id,
            config.presence.node_heartbeat_interval.get(),
            config.presence.node_expiry.get(),
        );
        let delivery = Arc::new(HubDelivery::default());
        let driver = PresenceDriver::start(
            spine,
            settings,
            Arc::clone(&delivery) as Arc<dyn PresenceDelivery>,
        );
        Self { driver, delivery }
    }

    /// Delivers notices to the node's `hub` from now on.
    pub(crate) fn bind(&self, hub: &Arc<Hub>) {
        let _ = self.delivery.hub.set(Arc::downgrade(hub));
    }

    /// The driver (counters, member lists).
    pub(crate) fn driver(&self) -> &PresenceDriver {
        &self.driver
    }

    /// Sends `room`'s member list to one session: every page for a joiner's snapshot, one page
    /// from `after` for a request. Runs in the driver's order, after the joins handed in before.
    pub(crate) fn send_list(&self, to: ListTarget, room: &RoomName, query: ListQuery) {
        let tenant = to.tenant.clone();
        let reply_room = room.clone();
        let mut round = 0;
        let reply: ListReply = Box::new(move |pages: Vec<MemberPage>| {
            round += 1;
            for (i, page) in pages.into_iter().enumerate() {
                let header = outbound::server_header(
                    &to.tenant,
                    format!("{}-p{}-{round}-{i}", to.session_id, to.request),
                    &to.correlation,
                    now_us(),
                );
                let next = page.next.as_ref().map(page_token).unwrap_or_default();
                let members = page.members.iter().map(wire_member).collect();
                let envelope = outbound::presence_snapshot(header, &reply_room, members, next);
                to.outbox
                    .offer(arqon_proto::encode_envelope(&envelope), &to.metrics);
            }
        });
        self.driver.list(&tenant, room, query, reply);
    }
}

impl PresenceHook for NodePresence {
    fn join(&self, member: &PresenceMember, room: &RoomName) {
        self.driver.join(
            &member.tenant,
            room,
            &member.session,
            &member.user,
            member.meta.clone(),
        );
    }

    fn leave(&self, member: &PresenceMember, room: &RoomName) {
        self.driver.leave(&member.tenant, room, &member.session);
    }
}

/// Who a member list goes to.
pub(crate) struct ListTarget {
    /// The session's tenant (the list is read from this tenant's presence only).
    pub(crate) tenant: TenantId,
    /// The session id, for message ids.
    pub(crate) session_id: String,
    /// The request it answers, for message ids.
    pub(crate) request: u64,
    /// The request's correlation id, echoed.
    pub(crate) correlation: String,
    /// The session's outbound queue.
    pub(crate) outbox: Outbox,
    /// The node's metrics (queue drops).
    pub(crate) metrics: Arc<Metrics>,
}

/// The continuation token of a page: `<session>/<node>` of the last member sent.
fn page_token((session, node): &MemberCursor) -> String {
    format!("{}/{}", session.0, node.0)
}

/// The cursor a `PresenceRequest.page_token` names; `None` for an empty or malformed token
/// (read from the start).
pub(crate) fn parse_page_token(token: &str) -> Option<MemberCursor> {
    let (session, node) = token.split_once('/')?;
    Some((SessionId(session.to_owned()), NodeId(node.to_owned())))
}

/// A `PresenceRequest.page_size`: 0 is the default page, and no page is longer than
/// [`MAX_PAGE_SIZE`].
pub(crate) fn page_size(requested: u32) -> usize {
    match usize::try_from(requested) {
        Ok(0) => PAGE_SIZE,
        Ok(size) => size.min(MAX_PAGE_SIZE),
        Err(_) => MAX_PAGE_SIZE,
    }
}

/// A member as the wire carries it; metadata is the join's map, kept as JSON by the machine.
fn wire_member(member: &Member) -> v1::Member {
    let metadata: BTreeMap<String, String> = member
        .meta
        .as_deref()
        .and_then(|json| serde_json::from_str(json).ok())
        .unwrap_or_default();
    v1::Member {
        user_id: member.user.as_str().to_owned(),
        session_id: member.session.0.clone(),
        node_id: member.node.0.clone(),
        joined_at_us: member.joined_at_us,
        metadata: metadata.into_iter().collect(),
    }
}

/// The join's metadata as the opaque text the machine keeps (`None` when there is none).
pub(crate) fn meta_text(metadata: &BTreeMap<String, String>) -> Option<String> {
    if metadata.is_empty() {
        return None;
    }
    serde_json::to_string(metadata).ok()
}

/// Delivers notices to the local members of a room through the node's hub.
#[derive(Default)]
struct HubDelivery {
    hub: OnceLock<Weak<Hub>>,
    sent: AtomicU64,
}

impl PresenceDelivery for HubDelivery {
    fn deliver<'a>(
        &'a self,
        tenant: &'a TenantId,
        room: &'a RoomName,
        notice: Notice,
        member: &'a Member,
    ) -> DeliveryFuture<'a> {
        Box::pin(async move {
            let Some(hub) = self.hub.get().and_then(Weak::upgrade) else {
                return;
            };
            let n = self.sent.fetch_add(1, Ordering::Relaxed);
            let header = outbound::server_header(tenant, format!("presence-{n}"), "", now_us());
            let envelope = match notice {
                Notice::Joined => outbound::presence_join(header, room, vec![wire_member(member)]),
                Notice::Left => outbound::presence_leave(
                    header,
                    room,
                    &member.user,
                    &member.session.0,
                    LeaveReason::Left,
                ),
            };
            let frame: Bytes = arqon_proto::encode_envelope(&envelope);
            hub.offer_local(&Subject::room(tenant, room), frame).await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_token_names_the_cursor_it_was_made_from() {
        let cursor = (SessionId("00ab".to_owned()), NodeId("n-1".to_owned()));
        assert_eq!(parse_page_token(&page_token(&cursor)), Some(cursor));
        assert_eq!(parse_page_token(""), None);
        assert_eq!(parse_page_token("no-separator"), None);
    }

    #[test]
    fn a_requested_page_size_is_defaulted_and_capped() {
        assert_eq!(page_size(0), PAGE_SIZE);
        assert_eq!(page_size(3), 3);
        assert_eq!(page_size(u32::MAX), MAX_PAGE_SIZE);
    }

    #[test]
    fn join_metadata_reaches_the_wire_member_unchanged() {
        let metadata = BTreeMap::from([
            ("status".to_owned(), "busy".to_owned()),
            ("emoji".to_owned(), "\u{1f600}".to_owned()),
        ]);
        assert_eq!(meta_text(&BTreeMap::new()), None);
        let member = Member {
            session: SessionId("s1".to_owned()),
            node: NodeId("n1".to_owned()),
            user: arqon_proto::names::UserId::parse("alice").unwrap(),
            joined_at_us: 7,
            meta: meta_text(&metadata),
        };
        let wire = wire_member(&member);
        assert_eq!(
            wire.metadata.into_iter().collect::<BTreeMap<_, _>>(),
            metadata
        );
        assert_eq!(
            (
                wire.user_id.as_str(),
                wire.session_id.as_str(),
                wire.node_id.as_str()
            ),
            ("alice", "s1", "n1")
        );
        assert_eq!(wire.joined_at_us, 7);
    }
}

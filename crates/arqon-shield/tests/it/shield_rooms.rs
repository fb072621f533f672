//! US2: rooms, real-time delivery with server stamping, tenant isolation, and per-node fan-out.

use arqon_proto::names::TenantId;
use arqon_proto::v1::{self, envelope::Body};

use crate::support::{self, Bus, connect, room, token};

// AC-SHIELD-4
#[tokio::test]
async fn us2_1_same_tenant_same_room_delivers_with_server_stamp_on_both_spines() {
    for bus in Bus::both().await {
        let mut config = support::config();
        bus.apply(&mut config);
        let node = support::start(config).await;
        let (mut a, welcome_a) = connect(&node, &token("acme", "alice", 60)).await;
        let (mut b, _) = connect(&node, &token("acme", "bob", 60)).await;
        a.join("lobby").await;
        b.join("lobby").await;

        // The client tries to forge server-owned fields; the server overwrites them.
        let forged = v1::Header {
            protocol_version: 1,
            tenant_id: "beta".to_owned(),
            sender_user_id: "mallory".to_owned(),
            sender_session_id: "fake".to_owned(),
            timestamp_us: 1,
            ..v1::Header::default()
        };
        let publish = v1::Publish {
            room: "lobby".to_owned(),
            payload: bytes::Bytes::from_static(b"HELLO"),
            content_type: "text/plain".to_owned(),
        };
        a.send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            prost::Message::encode_to_vec(&arqon_proto::outbound::envelope(forged, publish)).into(),
        ))
        .await;
        let delivered = b.expect_message(b"HELLO").await;
        let header = delivered.header.unwrap();
        assert_eq!(header.tenant_id, "acme", "{}", bus.name());
        assert_eq!(header.sender_user_id, "alice");
        assert_eq!(header.sender_session_id, welcome_a.session_id);
        assert!(
            header.timestamp_us > 1_000_000_000_000_000,
            "server timestamp"
        );
        assert!(!header.twist_id.is_empty(), "twist id filled by the server");
        // The publisher gets its echo too, and a client-chosen twist id is kept.
        let _ = a.expect_message(b"HELLO").await;
        let twisted = v1::Header {
            protocol_version: 1,
            twist_id: "twist-42".to_owned(),
            ..v1::Header::default()
        };
        let publish = v1::Publish {
            room: "lobby".to_owned(),
            payload: bytes::Bytes::from_static(b"AGAIN"),
            content_type: String::new(),
        };
        a.send_raw(tokio_tungstenite::tungstenite::Message::Binary(
            prost::Message::encode_to_vec(&arqon_proto::outbound::envelope(twisted, publish))
                .into(),
        ))
        .await;
        let again = b.expect_message(b"AGAIN").await;
        assert_eq!(again.header.unwrap().twist_id, "twist-42");
        drop((a, b));
        node.shutdown().await;
    }
}

// AC-SHIELD-5
#[tokio::test]
async fn us2_2_different_tenants_in_a_same_named_room_see_nothing_of_each_other() {
    for bus in Bus::both().await {
        let mut config = support::config();
        bus.apply(&mut config);
        let node = support::start(config).await;
        let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
        let (mut b, _) = connect(&node, &token("beta", "bob", 60)).await;
        let (mut c, _) = connect(&node, &token("beta", "carol", 60)).await;
        for client in [&mut a, &mut b, &mut c] {
            client.join("lobby").await;
        }
        a.publish("lobby", b"SECRET").await;
        let _ = a.expect_message(b"SECRET").await;
        // A marker from B's own tenant, sent after A's message was routed: B must see the marker
        // and never A's message.
        c.publish("lobby", b"MARKER").await;
        loop {
            let envelope = b.next_envelope().await.unwrap();
            if let Some(Body::Message(m)) = envelope.body {
                assert_ne!(
                    &m.payload[..],
                    b"SECRET",
                    "cross-tenant delivery on {}",
                    bus.name()
                );
                if &m.payload[..] == b"MARKER" {
                    assert_eq!(envelope.header.unwrap().tenant_id, "beta");
                    break;
                }
            }
        }
        drop((a, b, c));
        node.shutdown().await;
    }
}

// AC-SHIELD-4
#[tokio::test]
async fn one_spine_subscription_per_room_shared_by_local_members_and_released_by_the_last() {
    let node = support::start(support::config()).await;
    let acme = TenantId::parse("acme").unwrap();
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    let (mut b, _) = connect(&node, &token("acme", "bob", 60)).await;
    a.join("lobby").await;
    b.join("lobby").await;
    let subscribed = || {
        node.metrics()
            .rooms_subscribed
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(node.room_members(&acme, &room("lobby")).await, 2);
    assert_eq!(subscribed(), 1);
    a.publish("lobby", b"ONCE").await;
    let _ = b.expect_message(b"ONCE").await;
    let _ = a.expect_message(b"ONCE").await;

    let leave = a
        .send(v1::Leave {
            room: "lobby".to_owned(),
        })
        .await;
    a.expect_ack(&leave).await;
    assert_eq!(node.room_members(&acme, &room("lobby")).await, 1);
    // After leaving, A gets NOT_IN_ROOM for a publish and receives nothing more.
    a.publish("lobby", b"NOPE").await;
    let (code, _) = a.expect_error().await;
    assert_eq!(code, v1::ErrorCode::NotInRoom);
    let leave = b
        .send(v1::Leave {
            room: "lobby".to_owned(),
        })
        .await;
    b.expect_ack(&leave).await;
    assert_eq!(node.room_members(&acme, &room("lobby")).await, 0);
    assert_eq!(subscribed(), 0);
    drop((a, b));
    node.shutdown().await;
}

/// Records presence effects and wakes waiters.
#[derive(Default)]
struct Recorder {
    seen: std::sync::Mutex<Vec<(&'static str, String, String)>>,
    changed: tokio::sync::Notify,
}

impl arqon_shield::PresenceHook for Recorder {
    fn join(&self, member: &arqon_shield::PresenceMember, room: &arqon_proto::names::RoomName) {
        self.seen
            .lock()
            .unwrap()
            .push(("join", member.user.to_string(), room.to_string()));
        self.changed.notify_waiters();
    }
    fn leave(&self, member: &arqon_shield::PresenceMember, room: &arqon_proto::names::RoomName) {
        self.seen
            .lock()
            .unwrap()
            .push(("leave", member.user.to_string(), room.to_string()));
        self.changed.notify_waiters();
    }
}

impl Recorder {
    async fn wait_for(&self, count: usize) -> Vec<(&'static str, String, String)> {
        tokio::time::timeout(support::WAIT, async {
            loop {
                let changed = self.changed.notified();
                let seen = self.seen.lock().unwrap().clone();
                if seen.len() >= count {
                    return seen;
                }
                changed.await;
            }
        })
        .await
        .unwrap()
    }
}

// AC-SHIELD-20
#[tokio::test]
async fn presence_hook_sees_one_join_and_one_leave_per_room_including_on_disconnect() {
    let recorder = std::sync::Arc::new(Recorder::default());
    let hooks = arqon_shield::Hooks {
        presence: recorder.clone(),
        ..arqon_shield::Hooks::default()
    };
    let spine: std::sync::Arc<dyn arqon_spine::Spine> =
        std::sync::Arc::new(arqon_spine::EmbeddedSpine::new());
    let node = arqon_shield::Node::start_with(support::config(), spine, hooks)
        .await
        .unwrap();
    let (mut a, _) = connect(&node, &token("acme", "alice", 60)).await;
    a.join("r1").await;
    a.join("r2").await;
    a.join("r1").await; // already in: no second presence join
    let leave = a
        .send(v1::Leave {
            room: "r2".to_owned(),
        })
        .await;
    a.expect_ack(&leave).await;
    drop(a); // the disconnect leaves r1
    let seen = recorder.wait_for(4).await;
    let expect = |kind, room: &str| (kind, "alice".to_owned(), room.to_owned());
    assert_eq!(
        seen,
        vec![
            expect("join", "r1"),
            expect("join", "r2"),
            expect("leave", "r2"),
            expect("leave", "r1")
        ]
    );
    node.shutdown().await;
    assert_eq!(
        recorder.seen.lock().unwrap().len(),
        4,
        "no leave reported twice"
    );
}

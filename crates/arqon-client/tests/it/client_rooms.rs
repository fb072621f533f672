//! Rooms through `BusClient`: join, publish, receive; and a reconnect with backoff that joins the
//! rooms again after the connection is cut.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_auth::{Claims, DevKeys, Role};
use arqon_client::{Backoff, BusClient, Event};
use arqon_proto::names::{TenantId, UserId};
use arqon_shield::Node;
use arqon_testkit::DelayProxy;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn token(keys: &DevKeys, user: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = Claims::dev(
        TenantId::parse("acme").unwrap(),
        UserId::parse(user).unwrap(),
        Role::User,
        now,
        600,
    );
    keys.mint(&claims).unwrap()
}

/// The next room message, skipping other events.
async fn message(client: &mut BusClient) -> (String, String, Vec<u8>) {
    timeout(WAIT, async {
        loop {
            if let Event::Message {
                room,
                sender,
                payload,
                ..
            } = client.next_event().await.unwrap()
            {
                return (room, sender, payload.to_vec());
            }
        }
    })
    .await
    .expect("a message")
}

/// Waits for `wanted` (by variant), skipping other events.
async fn until(client: &mut BusClient, wanted: fn(&Event) -> bool) {
    timeout(WAIT, async {
        while !wanted(&client.next_event().await.unwrap()) {}
    })
    .await
    .expect("the event");
}

#[tokio::test]
async fn joins_publishes_receives_and_rejoins_after_a_reconnect() {
    let keys = DevKeys::generate().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.jwks = Some(keys.to_jwks_json());
    let node = Node::start(config).await.unwrap();
    let proxy = DelayProxy::start(node.local_addr(), Duration::ZERO)
        .await
        .unwrap();
    let via_proxy = format!("ws://{}/v1/socket", proxy.addr());
    let backoff = Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(200),
    };
    let mut alice = BusClient::connect_with(&via_proxy, &token(&keys, "alice"), backoff)
        .await
        .unwrap();
    let bob = BusClient::connect(&node.socket_url(), &token(&keys, "bob"))
        .await
        .unwrap();
    until(&mut alice, |e| matches!(e, Event::Connected { .. })).await;
    alice.join("general").await.unwrap();
    bob.join("general").await.unwrap();
    // Alice's own publish comes back once her join is in place; then Bob's reaches her too.
    alice.publish("general", "hi", "text/plain").await.unwrap();
    assert_eq!(message(&mut alice).await.2, b"hi");
    bob.publish("general", "hello", "text/plain").await.unwrap();
    assert_eq!(
        message(&mut alice).await,
        ("general".into(), "bob".into(), b"hello".to_vec())
    );

    proxy.cut();
    until(&mut alice, |e| matches!(e, Event::Disconnected)).await;
    proxy.restore();
    until(&mut alice, |e| matches!(e, Event::Connected { .. })).await;
    alice
        .publish("general", "back", "text/plain")
        .await
        .unwrap();
    // Skip what was in flight; the rejoined room delivers her own publish, then Bob's.
    timeout(WAIT, async {
        while message(&mut alice).await.2 != b"back" {}
    })
    .await
    .unwrap();
    bob.publish("general", "welcome back", "text/plain")
        .await
        .unwrap();
    assert_eq!(message(&mut alice).await.2, b"welcome back");
    drop(bob);
}

#[tokio::test]
async fn presence_events_name_who_joined_and_left() {
    let keys = DevKeys::generate().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.jwks = Some(keys.to_jwks_json());
    let node = Node::start(config).await.unwrap();
    let mut alice = BusClient::connect(&node.socket_url(), &token(&keys, "alice"))
        .await
        .unwrap();
    alice.join("general").await.unwrap();
    // Her own snapshot names her once her join is in place.
    timeout(WAIT, async {
        loop {
            if let Event::PresenceJoin { room, users, .. } = alice.next_event().await.unwrap()
                && room == "general"
                && users.iter().any(|u| u == "alice")
            {
                return;
            }
        }
    })
    .await
    .expect("alice's snapshot");
    let bob = BusClient::connect(&node.socket_url(), &token(&keys, "bob"))
        .await
        .unwrap();
    bob.join("general").await.unwrap();
    timeout(WAIT, async {
        loop {
            if let Event::PresenceJoin { users, .. } = alice.next_event().await.unwrap()
                && users.iter().any(|u| u == "bob")
            {
                return;
            }
        }
    })
    .await
    .expect("bob's join");
    bob.leave("general").await.unwrap();
    timeout(WAIT, async {
        loop {
            if let Event::PresenceLeave { room, user } = alice.next_event().await.unwrap()
                && room == "general"
                && user == "bob"
            {
                return;
            }
        }
    })
    .await
    .expect("bob's leave");
}

// AC-SDK-13, AC-PRESENCE-16
#[tokio::test]
async fn a_joiner_gets_the_rooms_member_list_as_a_snapshot_naming_who_was_there() {
    let keys = DevKeys::generate().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.jwks = Some(keys.to_jwks_json());
    let node = Node::start(config).await.unwrap();
    let alice = BusClient::connect(&node.socket_url(), &token(&keys, "alice"))
        .await
        .unwrap();
    alice.join("general").await.unwrap();
    let mut bob = BusClient::connect(&node.socket_url(), &token(&keys, "bob"))
        .await
        .unwrap();
    bob.join("general").await.unwrap();
    // The node began replicating the tenant with alice's join, so it is still warming up: bob is
    // shown what it knows at once, and the complete list once it is warm.
    let mut snapshots = Vec::new();
    timeout(WAIT, async {
        while snapshots.len() < 2 {
            if let Event::PresenceJoin {
                users,
                snapshot: true,
                ..
            } = bob.next_event().await.unwrap()
            {
                snapshots.push(users);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("two snapshots, got {snapshots:?}"));
    for users in &snapshots {
        assert!(users.iter().any(|u| u == "alice"), "{users:?}");
        assert!(users.iter().any(|u| u == "bob"), "{users:?}");
    }
}

// AC-SDK-14
#[tokio::test]
async fn ac_sdk_14_a_burst_arrives_in_batch_frames_and_every_message_comes_out_once_in_order() {
    let keys = DevKeys::generate().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.jwks = Some(keys.to_jwks_json());
    let rate = arqon_config::Rate {
        per_sec: 100_000,
        burst: 100_000,
    };
    config.limits.tenant_defaults.connection_publish = rate;
    config.limits.tenant_defaults.tenant_publish = rate;
    let node = Node::start(config).await.unwrap();
    let mut reader = BusClient::connect(&node.socket_url(), &token(&keys, "reader"))
        .await
        .unwrap();
    let writer = BusClient::connect(&node.socket_url(), &token(&keys, "writer"))
        .await
        .unwrap();
    reader.join("burst").await.unwrap();
    writer.join("burst").await.unwrap();
    // 500 publishes in flight at once: the node queues them for the reader faster than one
    // frame each can leave.
    let sends = (0..500u32).map(|i| writer.publish("burst", i.to_string().into_bytes(), ""));
    for sent in futures_util::future::join_all(sends).await {
        sent.unwrap();
    }
    let mut received = Vec::new();
    while received.len() < 500 {
        let (room, sender, payload) = message(&mut reader).await;
        assert_eq!((room.as_str(), sender.as_str()), ("burst", "writer"));
        received.push(String::from_utf8(payload).unwrap());
    }
    let expected: Vec<String> = (0..500u32).map(|i| i.to_string()).collect();
    let mut sorted = received.clone();
    sorted.sort_by_key(|p| p.parse::<u32>().unwrap());
    assert_eq!(sorted, expected, "every message once");
    // The node batched some of them, and the client unpacked every batch.
    let metrics = node.metrics();
    let batched = metrics
        .batched_envelopes
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(batched >= 2, "batched envelopes: {batched}");
}

//! The one conformance suite every Spine implementation passes, instantiated for the embedded bus and NATS.
//!
//! Each case takes a [`Bus`]: two handles (`a` publishes, `b` subscribes; for NATS two separate
//! connections to one real server) and a way to count the bus's interest in a subject.

use std::sync::Arc;

use arqon_spine::{
    Bytes, EmbeddedSpine, Headers, NatsConfig, NatsSpine, Spine, Subject, TRACEPARENT,
};
use arqon_testkit::NatsServer;

use crate::common::{expect_numbered, number, publish, publish_numbered, recv, room, tenant};

/// What a case runs against.
pub(crate) struct Bus {
    a: Arc<dyn Spine>,
    b: Arc<dyn Spine>,
    backend: Backend,
}

enum Backend {
    Embedded(EmbeddedSpine),
    Nats(Box<NatsServer>),
}

impl Bus {
    fn embedded() -> Self {
        let spine = EmbeddedSpine::new();
        Self {
            a: Arc::new(spine.clone()),
            b: Arc::new(spine.clone()),
            backend: Backend::Embedded(spine),
        }
    }

    async fn nats() -> Self {
        let server = NatsServer::start().await.unwrap();
        let config = NatsConfig::new([server.url()]);
        Self {
            a: Arc::new(NatsSpine::connect(&config).await.unwrap()),
            b: Arc::new(NatsSpine::connect(&config).await.unwrap()),
            backend: Backend::Nats(Box::new(server)),
        }
    }

    /// How many subscriptions the bus holds for `subject`.
    async fn interest(&self, subject: &Subject) -> usize {
        match &self.backend {
            Backend::Embedded(spine) => spine.subscriber_count(subject),
            Backend::Nats(server) => {
                let subsz = server.monitor("/subsz?subs=1").await.unwrap();
                subsz["subscriptions_list"].as_array().map_or(0, |subs| {
                    subs.iter()
                        .filter(|s| s["subject"] == subject.as_str())
                        .count()
                })
            }
        }
    }
}

// AC-SPINE-4
async fn ac_spine_4_roundtrip_keeps_subject_headers_and_bytes(bus: Bus) {
    let subject = room("acme", "lobby");
    let mut sub = bus.b.subscribe(&subject).await.unwrap();
    let headers = Headers::new()
        .with(
            TRACEPARENT,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
        .unwrap();
    let payload = Bytes::from_static(&[0, 1, 2, 255, b'\n', b'.', b'*']);
    bus.a
        .publish(&subject, headers.clone(), payload.clone())
        .await
        .unwrap();
    let got = recv(&mut sub).await;
    assert_eq!(got.subject, subject);
    assert_eq!(got.headers, headers);
    assert_eq!(got.payload, payload);
    assert_eq!(sub.subject(), &subject);
}

// AC-SPINE-5
async fn ac_spine_5_one_publisher_keeps_order(bus: Bus) {
    let subject = room("acme", "ordered");
    let mut sub = bus.b.subscribe(&subject).await.unwrap();
    publish_numbered(&*bus.a, &subject, 0, 2000).await;
    expect_numbered(&mut sub, 0, 2000).await;
}

// AC-SPINE-6
async fn ac_spine_6_tenants_sharing_a_room_name_stay_apart(bus: Bus) {
    let (acme, globex) = (tenant("acme"), tenant("globex"));
    let pairs = [
        (room("acme", "lobby"), room("globex", "lobby")),
        (Subject::presence(&acme), Subject::presence(&globex)),
        (Subject::gov_down(&acme), Subject::gov_down(&globex)),
    ];
    for (ours, theirs) in pairs {
        let mut sub_ours = bus.b.subscribe(&ours).await.unwrap();
        let mut sub_theirs = bus.b.subscribe(&theirs).await.unwrap();
        // One connection publishes theirs first, then ours: if ours' subscription matched theirs,
        // their message would arrive before ours (one publisher, one order).
        publish(&*bus.a, &theirs, b"globex-secret").await;
        publish(&*bus.a, &ours, b"acme-1").await;
        assert_eq!(&recv(&mut sub_ours).await.payload[..], b"acme-1");
        assert_eq!(&recv(&mut sub_theirs).await.payload[..], b"globex-secret");
        // And the other way round, with a marker after our message.
        publish(&*bus.a, &ours, b"acme-2").await;
        publish(&*bus.a, &theirs, b"globex-marker").await;
        assert_eq!(&recv(&mut sub_theirs).await.payload[..], b"globex-marker");
        assert_eq!(&recv(&mut sub_ours).await.payload[..], b"acme-2");
    }
}

// AC-SPINE-7
async fn ac_spine_7_dropped_subscription_releases_interest(bus: Bus) {
    let subject = room("acme", "leaving");
    let gone = bus.b.subscribe(&subject).await.unwrap();
    let mut stays = bus.b.subscribe(&subject).await.unwrap();
    assert_eq!(bus.interest(&subject).await, 2);
    drop(gone);
    bus.b.flush().await.unwrap();
    assert_eq!(bus.interest(&subject).await, 1);
    publish(&*bus.a, &subject, b"still here").await;
    assert_eq!(&recv(&mut stays).await.payload[..], b"still here");
    drop(stays);
    bus.b.flush().await.unwrap();
    assert_eq!(bus.interest(&subject).await, 0);
}

// AC-SPINE-8
async fn ac_spine_8_each_subscriber_gets_one_copy(bus: Bus) {
    let subject = room("acme", "fanout");
    let mut subs = vec![
        bus.b.subscribe(&subject).await.unwrap(),
        bus.b.subscribe(&subject).await.unwrap(),
        bus.a.subscribe(&subject).await.unwrap(),
    ];
    publish(&*bus.a, &subject, b"once").await;
    publish(&*bus.a, &subject, b"marker").await;
    for sub in &mut subs {
        assert_eq!(&recv(sub).await.payload[..], b"once");
        assert_eq!(
            &recv(sub).await.payload[..],
            b"marker",
            "a duplicate arrived"
        );
    }
}

/// One step of the seeded random workload.
#[derive(Debug)]
enum Op {
    Subscribe(usize),
    Drop(usize),
    Publish(usize),
}

// AC-SPINE-5 AC-SPINE-7 AC-SPINE-8: a seeded random mix of subscribes, drops and publishes; every
// live subscription gets exactly the messages of its subject published while it lived, in order.
async fn ac_spine_5_random_workload_matches_the_model(bus: Bus) {
    use rand::{Rng, SeedableRng};
    let subjects = [
        room("acme", "a"),
        room("acme", "b"),
        room("globex", "a"),
        Subject::presence(&tenant("globex")),
    ];
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0x5B1E_0005);
    // (subject index, subscription, expected numbers)
    let mut live: Vec<(usize, arqon_spine::Subscription, Vec<u32>)> = Vec::new();
    for n in 0..400u32 {
        let op = match rng.gen_range(0..10) {
            0..=1 => Op::Subscribe(rng.gen_range(0..subjects.len())),
            2 if !live.is_empty() => Op::Drop(rng.gen_range(0..live.len())),
            _ => Op::Publish(rng.gen_range(0..subjects.len())),
        };
        match op {
            Op::Subscribe(s) => {
                // Earlier publishes must reach the bus before the new interest does.
                bus.a.flush().await.unwrap();
                live.push((s, bus.b.subscribe(&subjects[s]).await.unwrap(), Vec::new()));
            }
            Op::Drop(i) => drop(live.swap_remove(i)),
            Op::Publish(s) => {
                publish(&*bus.a, &subjects[s], &n.to_be_bytes()).await;
                for (_, _, expected) in live.iter_mut().filter(|(t, _, _)| *t == s) {
                    expected.push(n);
                }
            }
        }
    }
    let checked: usize = live.iter().map(|(_, _, expected)| expected.len()).sum();
    assert!(
        live.len() >= 3 && checked >= 100,
        "the seed gives a vacuous workload"
    );
    let marker = u32::MAX;
    for subject in &subjects {
        publish(&*bus.a, subject, &marker.to_be_bytes()).await;
    }
    for (s, sub, expected) in &mut live {
        for &n in expected.iter() {
            assert_eq!(number(&recv(sub).await), n, "on {}", subjects[*s]);
        }
        assert_eq!(
            number(&recv(sub).await),
            marker,
            "an extra message on {}",
            subjects[*s]
        );
    }
}

// AC-SPINE-15
async fn ac_spine_15_connected_with_no_reconnects(bus: Bus) {
    for spine in [&bus.a, &bus.b] {
        let status = spine.status();
        assert!(status.connected);
        assert_eq!(status.reconnects, 0);
        assert_eq!(*spine.watch_status().borrow(), status);
        assert_eq!(spine.dropped(), 0);
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod embedded {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Bus::embedded()).await;
                }
            )*
        }
        mod nats {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::Bus::nats().await).await;
                }
            )*
        }
    };
}

conformance!(
    ac_spine_4_roundtrip_keeps_subject_headers_and_bytes,
    ac_spine_5_one_publisher_keeps_order,
    ac_spine_6_tenants_sharing_a_room_name_stay_apart,
    ac_spine_7_dropped_subscription_releases_interest,
    ac_spine_8_each_subscriber_gets_one_copy,
    ac_spine_15_connected_with_no_reconnects,
    ac_spine_5_random_workload_matches_the_model,
);

//! One governance writer per tenant across nodes (specs/lease.md): two governance services share
//! a real nats-server with `JetStream` (their audit chains and the KV lease bucket); exactly one
//! writes, the other refuses local submissions naming the writer, and when the writer goes (its
//! process state dropped) or its key is taken, the other takes over and the chain goes on unforked.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arqon_brain::audit_log::AuditStore;
use arqon_brain::governance::system_now;
use arqon_brain::governance_service::{GovernanceService, GovernanceServiceError, LeaseSettings};
use arqon_brain::lease::{BUCKET, KvLeaseStore};
use arqon_core::governance::{GovRole, Principal, Rules};
use arqon_core::lease::{Lease, LeaseConfig, LeaseState};
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1;
use arqon_spine::{NatsConfig, NatsSpine, Spine};
use arqon_testkit::NatsServer;
use tokio::sync::watch;

const WAIT: Duration = Duration::from_secs(20);
const MS: u64 = 1_000;

/// Short timings so a failover takes about two seconds.
fn lease() -> Lease {
    Lease {
        config: LeaseConfig {
            ttl_us: 1_500 * MS,
            renew_every_us: 300 * MS,
            retry_every_us: 200 * MS,
            margin_us: 300 * MS,
        },
    }
}

fn operator() -> Principal {
    Principal {
        user: UserId::parse("ops-1").unwrap(),
        role: GovRole::Operator,
    }
}

fn catalog(version: u64) -> GovernanceCommand {
    GovernanceCommand::CatalogUpdate(v1::CatalogUpdate {
        version,
        source_uri: format!("https://catalog.example.com/v{version}.json"),
    })
}

async fn node(server: &NatsServer, id: &str) -> GovernanceService {
    let spine: Arc<dyn Spine> = Arc::new(
        NatsSpine::connect(&NatsConfig::new([server.url()]))
            .await
            .unwrap(),
    );
    let client = async_nats::connect(server.url()).await.unwrap();
    let ttl = Duration::from_micros(lease().config.ttl_us);
    let store = KvLeaseStore::open(client.clone(), ttl).await.unwrap();
    GovernanceService::new(
        spine,
        AuditStore::JetStream(client),
        Rules::default(),
        Duration::from_hours(1),
        system_now(),
    )
    .with_lease(LeaseSettings {
        store: Arc::new(store),
        node_id: id.to_owned(),
        lease: lease(),
    })
}

/// A node serving `tenant` alone, once it is the writer.
async fn first_writer(
    server: &NatsServer,
    tenant: &TenantId,
) -> (GovernanceService, watch::Receiver<LeaseState>) {
    let a = node(server, "node-a").await;
    a.serve(tenant).await.unwrap();
    let mut lease = a.watch_lease(tenant).await.unwrap();
    until_writer(&mut lease).await;
    (a, lease)
}

async fn until_writer(lease: &mut watch::Receiver<LeaseState>) {
    tokio::time::timeout(
        WAIT,
        lease.wait_for(|s| matches!(s, LeaseState::Leader { .. } | LeaseState::Renewing { .. })),
    )
    .await
    .unwrap()
    .unwrap();
}

async fn until_follower(lease: &mut watch::Receiver<LeaseState>) {
    tokio::time::timeout(
        WAIT,
        lease.wait_for(|s| matches!(s, LeaseState::Follower { .. })),
    )
    .await
    .unwrap()
    .unwrap();
}

// AC-LEASE-8
#[tokio::test]
async fn ac_lease_8_one_writer_per_tenant_and_a_failover_that_continues_the_chain() {
    let server = NatsServer::start_jetstream().await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let (a, a_lease) = first_writer(&server, &tenant).await;
    let b = node(&server, "node-b").await;
    b.serve(&tenant).await.unwrap();
    let b_lease = b.watch_lease(&tenant).await.unwrap();
    assert!(a.is_writer(&tenant).await && !b.is_writer(&tenant).await);

    // The writer decides; the other node refuses, naming the writer.
    a.submit(&tenant, operator(), catalog(1)).await.unwrap();
    match b.submit(&tenant, operator(), catalog(2)).await {
        Err(GovernanceServiceError::NotWriter { writer, .. }) => {
            assert_eq!(writer.as_deref(), Some("node-a"));
        }
        other => panic!("expected NotWriter, got {other:?}"),
    }
    // Several renewals later, still one writer.
    tokio::time::timeout(WAIT, async {
        let mut a_lease = a_lease.clone();
        let mut renewed = 0;
        while renewed < 3 {
            a_lease.changed().await.unwrap();
            if matches!(*a_lease.borrow(), LeaseState::Renewing { .. }) {
                renewed += 1;
            }
        }
    })
    .await
    .unwrap();
    assert!(a.is_writer(&tenant).await && !b.is_writer(&tenant).await);
    assert!(matches!(
        *b_lease.borrow(),
        LeaseState::Follower { .. } | LeaseState::Acquiring { .. }
    ));

    // The writer goes away without releasing anything: the other takes over once the key expires.
    let gone = Instant::now();
    drop(a);
    let mut b_lease = b_lease;
    until_writer(&mut b_lease).await;
    let failover = gone.elapsed();
    println!("governance failover (writer gone -> new writer): {failover:?}");
    assert!(
        failover >= Duration::from_micros(lease().config.ttl_us - lease().config.renew_every_us)
    );
    assert!(b.is_writer(&tenant).await);
    // The new writer resumes after the last committed record: the chain goes on, unforked.
    b.submit(&tenant, operator(), catalog(2)).await.unwrap();
    let client = async_nats::connect(server.url()).await.unwrap();
    let records = AuditStore::JetStream(client).verify(&tenant).await.unwrap();
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.record.kind.as_str(), r.record.subject.as_str()))
        .collect();
    assert!(
        kinds
            .iter()
            .filter(|(kind, _)| *kind == "catalog_update")
            .count()
            >= 2,
        "{kinds:?}"
    );
    assert!(
        records
            .windows(2)
            .all(|w| w[1].seq == w[0].seq + 1 && w[1].prev_hash == w[0].hash)
    );
}

// AC-LEASE-9
#[tokio::test]
async fn ac_lease_9_a_writer_whose_key_is_taken_stops_writing_at_once() {
    let server = NatsServer::start_jetstream().await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let (a, mut a_lease) = first_writer(&server, &tenant).await;
    // Someone else writes the key (an operator's tool, a partitioned node's late write): the
    // writer's next renewal names a stale revision and is refused.
    let client = async_nats::connect(server.url()).await.unwrap();
    let kv = async_nats::jetstream::new(client)
        .get_key_value(BUCKET)
        .await
        .unwrap();
    kv.put(tenant.as_str(), "intruder".into()).await.unwrap();
    until_follower(&mut a_lease).await;
    assert!(!a.is_writer(&tenant).await);
    match a.submit(&tenant, operator(), catalog(1)).await {
        Err(GovernanceServiceError::NotWriter { writer, .. }) => {
            assert_eq!(writer.as_deref(), Some("intruder"));
        }
        other => panic!("expected NotWriter, got {other:?}"),
    }
}

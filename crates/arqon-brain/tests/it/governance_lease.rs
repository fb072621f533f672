//! One governance writer per tenant across nodes (specs/lease.md): two governance services share
//! a real nats-server with `JetStream` (their audit chains and the KV lease bucket); exactly one
//! writes, the other forwards its calls to the writer, and when the writer goes (its process state
//! dropped) or its key is taken, the other takes over and the chain and the control plane go on.

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

    // The writer decides, whichever node the call reaches: the other forwards it (AC-LEASE-11).
    a.submit(&tenant, operator(), catalog(1)).await.unwrap();
    let forwarded = b.submit(&tenant, operator(), catalog(2)).await.unwrap();
    assert!(forwarded.refusals.is_empty());
    assert_eq!(forwarded.records[0].record.kind, "catalog_update");
    assert_eq!(forwarded.records[0].record.subject, "2");
    let stale = b.submit(&tenant, operator(), catalog(2)).await.unwrap();
    assert_eq!(stale.refusals[0].0, v1::ErrorCode::CatalogStale);
    assert_eq!(
        b.snapshot(&tenant).await.unwrap(),
        a.snapshot(&tenant).await.unwrap()
    );
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
    b.submit(&tenant, operator(), catalog(3)).await.unwrap();
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
            >= 3,
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
    // The intruder keeps its key (renewing as a writer would) but answers nothing: a call on the
    // node is forwarded, unanswered, and refused naming the holder (AC-LEASE-11).
    let renewer = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(300));
        loop {
            every.tick().await;
            kv.put("acme", "intruder".into()).await.unwrap();
        }
    });
    let asked = Instant::now();
    match a.submit(&tenant, operator(), catalog(1)).await {
        Err(GovernanceServiceError::NotWriter { writer, .. }) => {
            assert_eq!(writer.as_deref(), Some("intruder"));
        }
        other => panic!("expected NotWriter, got {other:?}"),
    }
    assert!(asked.elapsed() >= arqon_brain::forward::FORWARD_WAIT);
    renewer.abort();
}

fn agent() -> Principal {
    Principal {
        user: UserId::parse("agent-1").unwrap(),
        role: GovRole::DataPlane,
    }
}

fn proposal(id: &str) -> GovernanceCommand {
    GovernanceCommand::Proposal(v1::Proposal {
        id: id.into(),
        timestamp_us: 1,
        variant_id: Some(42),
        reason: "Latency regression detected".into(),
        confidence: 0.92,
        ..v1::Proposal::default()
    })
}

fn enforce(action: v1::enforce::Action) -> GovernanceCommand {
    GovernanceCommand::Enforce(v1::Enforce {
        reason: "test".into(),
        action: Some(action),
    })
}

// AC-LEASE-10
#[tokio::test]
async fn ac_lease_10_a_new_writer_resumes_the_control_plane_not_only_the_chain() {
    let server = NatsServer::start_jetstream().await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let (a, _) = first_writer(&server, &tenant).await;
    let b = node(&server, "node-b").await;
    b.serve(&tenant).await.unwrap();
    let mut b_lease = b.watch_lease(&tenant).await.unwrap();
    // The writer holds a pending proposal, catalog 3, and the tenant paused.
    for command in [
        proposal("p1"),
        catalog(3),
        enforce(v1::enforce::Action::PauseAdaptation(v1::PauseAdaptation {})),
    ] {
        let from = if command.is_upstream() {
            agent()
        } else {
            operator()
        };
        let applied = a.submit(&tenant, from, command).await.unwrap();
        assert!(applied.refusals.is_empty(), "{:?}", applied.refusals);
    }
    let before = a.snapshot(&tenant).await.unwrap();
    drop(a);
    until_writer(&mut b_lease).await;

    // The new writer holds the same state: nothing was forgotten, the pause least of all.
    let after = b.snapshot(&tenant).await.unwrap();
    assert_eq!(after, before);
    assert!(after.paused());
    assert_eq!(after.catalog_version(), 3);
    assert_eq!(after.pending()[0].proposal.id, "p1");
    // And it decides from it: a stale catalog is refused, resume then approval go through.
    let applied = b.submit(&tenant, operator(), catalog(2)).await.unwrap();
    assert_eq!(applied.refusals[0].0, v1::ErrorCode::CatalogStale);
    let resume = enforce(v1::enforce::Action::ResumeAdaptation(
        v1::ResumeAdaptation {},
    ));
    assert!(
        b.submit(&tenant, operator(), resume)
            .await
            .unwrap()
            .refusals
            .is_empty()
    );
    let approve = GovernanceCommand::Approval(v1::Approval {
        proposal_id: "p1".into(),
        proposal_digest: String::new(),
        rollout: Some(v1::RolloutConfig {
            initial_percent: 5.0,
            increment_per_minute: 10.0,
            max_percent: 50.0,
        }),
    });
    let applied = b.submit(&tenant, operator(), approve).await.unwrap();
    assert!(applied.refusals.is_empty(), "{:?}", applied.refusals);
    assert!(
        b.snapshot(&tenant)
            .await
            .unwrap()
            .in_flight()
            .contains_key("p1")
    );
}

// AC-LEASE-10
#[tokio::test]
async fn ac_lease_10_a_restarted_single_node_resumes_from_its_checkpoint_file() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let spine: Arc<dyn Spine> = Arc::new(arqon_spine::EmbeddedSpine::new());
    let service = || {
        GovernanceService::new(
            Arc::clone(&spine),
            AuditStore::Dir(dir.path().to_path_buf()),
            Rules::default(),
            Duration::from_hours(1),
            system_now(),
        )
    };
    let first = service();
    first.serve(&tenant).await.unwrap();
    first
        .submit(&tenant, agent(), proposal("p1"))
        .await
        .unwrap();
    let stop = enforce(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {}));
    assert!(
        first
            .submit(&tenant, operator(), stop)
            .await
            .unwrap()
            .refusals
            .is_empty()
    );
    let before = first.snapshot(&tenant).await.unwrap();
    drop(first);

    let second = service();
    second.serve(&tenant).await.unwrap();
    let after = second.snapshot(&tenant).await.unwrap();
    assert_eq!(after, before);
    assert!(after.paused(), "an emergency stop survives the restart");
    // A checkpoint that does not parse: the control plane starts paused (fail closed).
    drop(second);
    let file = dir.path().join("acme.audit.checkpoint.json");
    assert!(file.exists());
    std::fs::write(&file, "{ not json").unwrap();
    let third = service();
    third.serve(&tenant).await.unwrap();
    let refused = third.snapshot(&tenant).await.unwrap();
    assert!(refused.paused() && refused.pending().is_empty());
}

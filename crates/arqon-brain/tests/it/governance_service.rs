//! The governance service on a real nats-server (Spine over NATS, audit in `JetStream`): a data
//! plane proposes over `gov.up`, an operator decides through the in-process API.

use std::sync::Arc;
use std::time::Duration;

use arqon_brain::audit_log::AuditStore;
use arqon_brain::governance::{ROLE_HEADER, system_now};
use arqon_brain::governance_service::{GovernanceService, GovernanceServiceError};
use arqon_core::governance::{GovRole, Principal, Rules, proposal_digest};
use arqon_core::subject::Subject;
use arqon_proto::GovernanceCommand;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::outbound::{encode_envelope, envelope};
use arqon_proto::v1::{self, Envelope, Header, envelope::Body};
use arqon_spine::{Headers, NatsConfig, NatsSpine, Spine, Subscription};
use arqon_testkit::NatsServer;
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(10);

fn operator() -> Principal {
    Principal {
        user: UserId::parse("ops-1").unwrap(),
        role: GovRole::Operator,
    }
}

async fn next_body(down: &mut Subscription) -> Body {
    let message = tokio::time::timeout(WAIT, down.recv())
        .await
        .unwrap()
        .unwrap();
    Envelope::decode(message.payload).unwrap().body.unwrap()
}

fn proposal() -> v1::Proposal {
    v1::Proposal {
        id: "prop_001".into(),
        timestamp_us: 1,
        variant_id: Some(42),
        reason: "Latency regression detected".into(),
        confidence: 0.92,
        ..v1::Proposal::default()
    }
}

// AC-GOV-16 (and AC-GOV-8 through the service)
#[tokio::test]
async fn operator_decides_through_the_service_over_nats_with_jetstream_audit() {
    let server = NatsServer::start_jetstream().await.unwrap();
    let spine: Arc<dyn Spine> = Arc::new(
        NatsSpine::connect(&NatsConfig::new([server.url()]))
            .await
            .unwrap(),
    );
    let client = async_nats::connect(server.url()).await.unwrap();
    let tenant = TenantId::parse("acme").unwrap();
    let service = GovernanceService::new(
        Arc::clone(&spine),
        AuditStore::JetStream(client.clone()),
        Rules::default(),
        Duration::from_hours(1),
        system_now(),
    );
    service.serve(&tenant).await.unwrap();
    service.serve(&tenant).await.unwrap();
    let mut down = spine.subscribe(&Subject::gov_down(&tenant)).await.unwrap();

    // A data plane proposes over gov.up; with auto-approve off it waits for an operator.
    let header = Header {
        protocol_version: 1,
        tenant_id: "acme".into(),
        sender_user_id: "agent-1".into(),
        sender_session_id: "s-1".into(),
        ..Header::default()
    };
    let up = encode_envelope(&envelope(header.clone(), proposal()));
    let role = Headers::new().with(ROLE_HEADER, "dataplane").unwrap();
    let gov_up = Subject::gov_up(&tenant);
    spine.publish(&gov_up, role, up).await.unwrap();
    // Then a message with no role from the same publisher: its refusal on gov.down tells us the
    // proposal (published before it) has been handled.
    let marker = encode_envelope(&envelope(header, v1::Telemetry::default()));
    spine
        .publish(&gov_up, Headers::new(), marker)
        .await
        .unwrap();
    // The proposal's one answer is an ack to its session; then the marker's refusal.
    assert!(matches!(next_body(&mut down).await, Body::Ack(_)));
    let Body::Error(error) = next_body(&mut down).await else {
        panic!("expected the marker's refusal");
    };
    assert_eq!(error.code(), v1::ErrorCode::Forbidden);
    let snapshot = service.snapshot(&tenant).await.unwrap();
    let pending = snapshot.pending();
    assert_eq!(pending[0].digest, proposal_digest(&proposal()));

    // The operator approves with a ramp: the approval goes to the data planes.
    let rollout = v1::RolloutConfig {
        initial_percent: 5.0,
        increment_per_minute: 10.0,
        max_percent: 50.0,
    };
    let approve = GovernanceCommand::Approval(v1::Approval {
        proposal_id: "prop_001".into(),
        proposal_digest: String::new(),
        rollout: Some(rollout),
    });
    let applied = service.submit(&tenant, operator(), approve).await.unwrap();
    assert!(applied.refusals.is_empty());
    let Body::Approval(approval) = next_body(&mut down).await else {
        panic!("expected an approval");
    };
    assert_eq!(approval.proposal_digest, proposal_digest(&proposal()));
    assert_eq!(approval.rollout, Some(rollout));

    // Unknown ids and data-plane enforcement are refused to the caller.
    let again = GovernanceCommand::Rejection(v1::Rejection {
        proposal_id: "prop_001".into(),
        reason: String::new(),
    });
    let applied = service.submit(&tenant, operator(), again).await.unwrap();
    assert_eq!(applied.refusals[0].0, v1::ErrorCode::NotFound);
    let agent = Principal {
        user: UserId::parse("agent-1").unwrap(),
        role: GovRole::DataPlane,
    };
    let stop = GovernanceCommand::Enforce(v1::Enforce {
        reason: "stop".into(),
        action: Some(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {})),
    });
    let applied = service.submit(&tenant, agent, stop.clone()).await.unwrap();
    assert_eq!(applied.refusals[0].0, v1::ErrorCode::Forbidden);
    assert!(!service.snapshot(&tenant).await.unwrap().paused());

    // The operator's stop reaches the data planes and pauses the tenant.
    let applied = service.submit(&tenant, operator(), stop).await.unwrap();
    assert!(applied.refusals.is_empty());
    assert!(matches!(next_body(&mut down).await, Body::Enforce(_)));
    let snapshot = service.snapshot(&tenant).await.unwrap();
    assert!(snapshot.paused() && snapshot.in_flight().is_empty());

    // The whole story is in the tenant's JetStream chain, which verifies.
    assert_story(client, &tenant).await;

    let other = TenantId::parse("other").unwrap();
    assert!(matches!(
        service.snapshot(&other).await,
        Err(GovernanceServiceError::NotServed(_))
    ));
}

/// The tenant's `JetStream` chain verifies and tells the whole story, in order.
async fn assert_story(client: async_nats::Client, tenant: &TenantId) {
    let records = AuditStore::JetStream(client).verify(tenant).await.unwrap();
    let outcomes: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.record.kind.as_str(), r.record.outcome.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("proposal", "pending"),
            ("telemetry", "forbidden"),
            ("approval", "accepted"),
            ("approval", "published"),
            ("rejection", "not_found"),
            ("enforce", "forbidden"),
            ("enforce", "accepted"),
            ("enforce", "published"),
            ("rollout", "cancelled"),
        ]
    );
}

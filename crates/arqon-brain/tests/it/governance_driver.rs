//! The governance driver over the embedded Spine: proposals approved with their digest, a data
//! plane's Enforce refused and audited, an operator's emergency stop fanned out, junk dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arqon_brain::audit_log::{AuditLog, FileAuditLog};
use arqon_brain::governance::{
    GovernanceDriverError, Now, ROLE_HEADER, TO_SESSION_HEADER, TenantDriver,
};
use arqon_core::audit::verify;
use arqon_core::governance::{Rules, verify_approval};
use arqon_core::rollout::RolloutConfig;
use arqon_core::subject::Subject;
use arqon_proto::names::TenantId;
use arqon_proto::outbound::{encode_envelope, envelope};
use arqon_proto::v1::{self, Envelope, Header, envelope::Body};
use arqon_spine::{Bytes, EmbeddedSpine, Headers, Message, Spine, Subscription};
use prost::Message as _;

const WAIT: Duration = Duration::from_secs(10);
const T0: u64 = 1_700_000_000_000_000;

fn up(user: &str, session: &str, body: impl Into<Body>) -> Bytes {
    let header = Header {
        protocol_version: 1,
        tenant_id: "acme".into(),
        sender_user_id: user.into(),
        sender_session_id: session.into(),
        correlation_id: format!("corr-{session}"),
        ..Header::default()
    };
    encode_envelope(&envelope(header, body))
}

fn role(claim: &str) -> Headers {
    Headers::new().with(ROLE_HEADER, claim).unwrap()
}

async fn next(down: &mut Subscription) -> (Message, Envelope) {
    let message = tokio::time::timeout(WAIT, down.recv())
        .await
        .unwrap()
        .unwrap();
    let envelope = Envelope::decode(message.payload.clone()).unwrap();
    (message, envelope)
}

/// The next message is the one answer to `session`'s message: an `Ack` addressed to it only,
/// carrying its correlation id (AC-GOV-22).
async fn acked(down: &mut Subscription, session: &str) {
    let (message, reply) = next(down).await;
    assert_eq!(message.headers.get(TO_SESSION_HEADER), Some(session));
    assert!(
        matches!(reply.body, Some(Body::Ack(_))),
        "expected an ack, got {reply:?}"
    );
    assert_eq!(
        reply.header.unwrap().correlation_id,
        format!("corr-{session}")
    );
}

/// Telemetry with no role header, from `session`: the driver fails closed and answers that session
/// only.
async fn unsigned_telemetry_is_refused(
    spine: &dyn Spine,
    gov_up: &Subject,
    down: &mut Subscription,
    session: &str,
) {
    let user = format!("agent-{session}");
    spine
        .publish(
            gov_up,
            Headers::new(),
            up(&user, session, v1::Telemetry::default()),
        )
        .await
        .unwrap();
    let (message, _) = next(down).await;
    assert_eq!(message.headers.get(TO_SESSION_HEADER), Some(session));
}

struct Fixture {
    dir: tempfile::TempDir,
    tenant: TenantId,
    spine: Arc<dyn Spine>,
    clock: Arc<AtomicU64>,
    down: Subscription,
    task: tokio::task::JoinHandle<Result<TenantDriver, GovernanceDriverError>>,
}

impl Fixture {
    /// A driver with auto-approval on the embedded Spine, a file audit log and a fixed clock,
    /// and a data plane's subscription to `gov.down`.
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let spine: Arc<dyn Spine> = Arc::new(EmbeddedSpine::new());
        let audit = AuditLog::File(FileAuditLog::open(dir.path(), &tenant).await.unwrap());
        let rules = Rules {
            auto_approve: true,
            max_concurrent_rollouts: 2,
            min_confidence: 0.8,
            default_rollout: RolloutConfig {
                initial_bp: 500,
                increment_bp_per_minute: 1_000,
                max_bp: 5_000,
            },
        };
        let driver = TenantDriver::new(tenant.clone(), rules, audit, Arc::clone(&spine));
        let clock = Arc::new(AtomicU64::new(T0));
        let now: Now = {
            let clock = Arc::clone(&clock);
            Arc::new(move || clock.load(Ordering::SeqCst))
        };
        let down = spine.subscribe(&Subject::gov_down(&tenant)).await.unwrap();
        let subscription = driver.subscribe().await.unwrap();
        // No local commands in this test: the sender is dropped at once.
        let (_, commands) = tokio::sync::mpsc::channel(1);
        let task = tokio::spawn(driver.run(subscription, commands, Duration::from_hours(1), now));
        Self {
            dir,
            tenant,
            spine,
            clock,
            down,
            task,
        }
    }
}

// AC-GOV-15 (and AC-GOV-2, AC-GOV-9 over the Spine)
#[tokio::test]
async fn driver_decides_over_the_spine_and_audits_everything() {
    let Fixture {
        dir,
        tenant,
        spine,
        clock,
        mut down,
        task,
    } = Fixture::start().await;
    let gov_up = Subject::gov_up(&tenant);

    // Junk is dropped (and audited) without an answer.
    spine
        .publish(&gov_up, role("agent"), Bytes::from_static(b"\xff\x00junk"))
        .await
        .unwrap();

    // A data plane's proposal is approved with its digest.
    let proposal = v1::Proposal {
        id: "prop_001".into(),
        timestamp_us: T0,
        variant_id: Some(42),
        params: [("alpha".to_owned(), 0.5)].into_iter().collect(),
        reason: "Latency regression detected".into(),
        confidence: 0.92,
    };
    spine
        .publish(
            &gov_up,
            role("agent"),
            up("agent-1", "s-1", proposal.clone()),
        )
        .await
        .unwrap();
    let (message, reply) = next(&mut down).await;
    assert!(message.headers.get(TO_SESSION_HEADER).is_none());
    let Some(Body::Approval(approval)) = reply.body else {
        panic!("expected an approval, got {reply:?}");
    };
    verify_approval(&proposal, &approval).unwrap();
    assert_eq!(
        approval.rollout.unwrap().max_percent.to_bits(),
        50.0f64.to_bits()
    );
    acked(&mut down, "s-1").await;

    // A data plane may not enforce: refused to its session only.
    let stop = v1::Enforce {
        reason: "panic".into(),
        action: Some(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {})),
    };
    spine
        .publish(&gov_up, role("agent"), up("agent-1", "s-1", stop.clone()))
        .await
        .unwrap();
    let (message, reply) = next(&mut down).await;
    assert_eq!(message.headers.get(TO_SESSION_HEADER), Some("s-1"));
    let Some(Body::Error(error)) = reply.body else {
        panic!("expected an error, got {reply:?}");
    };
    assert_eq!(error.code(), v1::ErrorCode::Forbidden);
    assert_eq!(error.correlation_id, "corr-s-1");

    // No role header at all: fail closed.
    unsigned_telemetry_is_refused(&*spine, &gov_up, &mut down, "s-2").await;

    // An operator's emergency stop goes to every data plane.
    clock.store(T0 + 1_000, Ordering::SeqCst);
    spine
        .publish(&gov_up, role("operator"), up("ops-1", "s-9", stop.clone()))
        .await
        .unwrap();
    let (message, reply) = next(&mut down).await;
    assert!(message.headers.get(TO_SESSION_HEADER).is_none());
    assert_eq!(reply.body, Some(Body::Enforce(stop)));
    assert_eq!(reply.header.unwrap().tenant_id, "acme");
    acked(&mut down, "s-9").await;

    // The enforcement goes out before its audit records are appended. The driver handles one
    // message at a time, so once a later message is answered the stop's records are on disk.
    unsigned_telemetry_is_refused(&*spine, &gov_up, &mut down, "s-3").await;

    // Everything above is in the audit chain, which verifies.
    assert_audited(&dir, &tenant).await;
    task.abort();
}

/// The audit chain of `tenant` verifies and holds every step of the scenario.
async fn assert_audited(dir: &tempfile::TempDir, tenant: &TenantId) {
    let records = FileAuditLog::read_path(&FileAuditLog::path_for(dir.path(), tenant))
        .await
        .unwrap();
    verify(&records).unwrap();
    let seen: Vec<(&str, &str)> = records
        .iter()
        .map(|r| (r.record.kind.as_str(), r.record.outcome.as_str()))
        .collect();
    for expected in [
        ("invalid", "dropped"),
        ("proposal", "approved"),
        ("approval", "published"),
        ("enforce", "forbidden"),
        ("telemetry", "forbidden"),
        ("enforce", "accepted"),
        ("enforce", "published"),
        ("rollout", "cancelled"),
    ] {
        assert!(seen.contains(&expected), "{expected:?} not in {seen:?}");
    }
    let stop_record = records
        .iter()
        .find(|r| r.record.kind == "enforce" && r.record.outcome == "accepted")
        .unwrap();
    assert_eq!(stop_record.record.actor, "ops-1");
    assert_eq!(stop_record.record.role, "operator");
    assert_eq!(stop_record.record.at_us, T0 + 1_000);
}

//! Governance end to end over real sockets: data planes on `arqon-client`, an operator on the
//! admin API, the Brain's control plane inside the node, the audit chain in a file.

use std::sync::Arc;
use std::time::Duration;

use arqon_auth::{Claims, Role};
use arqon_client::{
    ApprovedRollout, BusClient, DownstreamMessage, EnforcementAction, Proposal, RolloutTracker,
};
use arqon_core::governance::proposal_digest;
use arqon_core::subject::Subject;
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::outbound::{encode_envelope, envelope, server_header};
use arqon_proto::v1;
use arqon_proto::{GovernanceCommand, PROTOCOL_VERSION};
use arqon_shield::{Hooks, Node};
use arqon_spine::{EmbeddedSpine, Headers, Spine};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::timeout;

use crate::support::{WAIT, config, keys, now_secs};

const TENANT: &str = "acme";
/// Seed of the rollout trackers' coin flips.
const SEED: u64 = 0x5eed_0004;

fn gov_token(tenant: &str, user: &str, role: Role) -> String {
    let claims = Claims::dev(
        TenantId::parse(tenant).unwrap(),
        UserId::parse(user).unwrap(),
        role,
        now_secs(),
        600,
    );
    keys().mint(&claims).unwrap()
}

/// A node with the admin API on and the audit chains in `dir`.
fn gov_config(dir: &std::path::Path) -> arqon_config::Config {
    let mut config = config();
    config.admin.enabled = true;
    config.governance.audit_path = dir.to_path_buf();
    config.governance.auto_approve = false;
    config
}

/// One admin API call: (status, JSON body).
pub(crate) async fn admin(
    node: &Node,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(node.local_addr())
        .await
        .unwrap();
    let payload = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        payload.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    timeout(WAIT, stream.read_to_end(&mut response))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(response).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn base(tenant: &str) -> String {
    format!("/admin/v1/tenants/{tenant}/governance")
}

/// Waits (without sleeping: one admin round trip after another) until `id` is pending.
async fn until_pending(node: &Node, token: &str, id: &str) {
    timeout(WAIT, async {
        loop {
            let (status, state) = admin(node, token, "GET", &base(TENANT), None).await;
            assert_eq!(status, 200, "{state}");
            let pending = state["pending"].as_array().cloned().unwrap_or_default();
            if pending.iter().any(|p| p["id"] == id) {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("proposal reaches the control plane");
}

async fn audit_records(node: &Node, token: &str) -> Vec<Value> {
    let (status, body) = admin(node, token, "GET", &format!("{}/audit", base(TENANT)), None).await;
    assert_eq!(status, 200, "{body}");
    body["records"].as_array().cloned().unwrap()
}

async fn next(client: &mut BusClient) -> DownstreamMessage {
    timeout(WAIT, client.recv()).await.unwrap().unwrap()
}

fn proposal(id: &str) -> Proposal {
    Proposal {
        id: id.to_owned(),
        variant_id: Some(42),
        reason: "Latency regression detected".to_owned(),
        confidence: 0.92,
        ..Default::default()
    }
}

/// The ramp of an approval, under a controlled clock: 5 % now, +10 points a minute, capped at
/// 50 %, with seeded coin flips.
fn ramp(rollout: ApprovedRollout) -> RolloutTracker {
    let t0 = 1_700_000_000_000_000;
    let mut tracker = RolloutTracker::new(rollout.proposal, rollout.config, t0, SEED).unwrap();
    let mut ramp = vec![tracker.percent_bp()];
    for _ in 0..6 {
        tracker.step();
        ramp.push(tracker.percent_bp());
    }
    assert_eq!(ramp, [500, 1500, 2500, 3500, 4500, 5000, 5000]);
    let applied = (0..10_000).filter(|_| tracker.should_apply()).count();
    assert!(
        (4_700..=5_300).contains(&applied),
        "{applied} of 10000 at 50 %"
    );

    tracker
}

/// The chain verifies and holds the proposal, the approval and both enforcements.
async fn assert_audit_of_the_workflow(node: &Node, operator: &str) {
    let (status, body) = admin(
        node,
        operator,
        "GET",
        &format!("{}/audit/verify", base(TENANT)),
        None,
    )
    .await;
    assert_eq!((status, &body["ok"]), (200, &json!(true)), "{body}");
    let kinds: Vec<(String, String)> = audit_records(node, operator)
        .await
        .iter()
        .map(|r| {
            (
                r["record"]["kind"].as_str().unwrap().to_owned(),
                r["record"]["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(kinds.iter().any(|(k, _)| k == "proposal"), "{kinds:?}");
    assert!(kinds.iter().any(|(k, _)| k == "approval"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|(k, _)| k == "enforce").count() >= 2,
        "{kinds:?}"
    );
}

// AC-GOV-17
#[tokio::test]
async fn ac_gov_17_proposal_approval_ramp_emergency_stop_resume() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(gov_config(dir.path())).await.unwrap();
    let operator = gov_token(TENANT, "ops", Role::Operator);
    let mut planes = Vec::new();
    for i in 0..3 {
        let token = gov_token(TENANT, &format!("dp-{i}"), Role::Agent);
        planes.push(
            BusClient::connect(&node.socket_url(), &token)
                .await
                .unwrap(),
        );
    }
    // Another tenant's data plane hears nothing of acme's governance.
    let other = gov_token("globex", "dp-x", Role::Agent);
    let mut stranger = BusClient::connect(&node.socket_url(), &other)
        .await
        .unwrap();

    planes[0].send(proposal("prop_001")).await.unwrap();
    until_pending(&node, &operator, "prop_001").await;
    let approve = json!({ "initial_percent": 5, "increment_per_minute": 10, "max_percent": 50 });
    let path = format!("{}/proposals/prop_001/approve", base(TENANT));
    let (status, body) = admin(&node, &operator, "POST", &path, Some(&approve)).await;
    assert_eq!(status, 200, "{body}");

    let DownstreamMessage::Approval {
        proposal_id,
        proposal_digest: digest,
        rollout,
    } = next(&mut planes[0]).await
    else {
        panic!("an approval")
    };
    assert_eq!(proposal_id, "prop_001");
    assert_eq!(rollout.proposal.digest.0, digest);
    assert_eq!(rollout.proposal.variant, Some(42));
    let mut tracker = ramp(rollout);

    let stop = json!({ "action": "emergency-stop", "reason": "error budget burnt" });
    let path = format!("{}/enforce", base(TENANT));
    let (status, body) = admin(&node, &operator, "POST", &path, Some(&stop)).await;
    assert_eq!(status, 200, "{body}");
    for plane in &mut planes {
        let message = next(plane).await;
        assert!(
            matches!(
                &message,
                DownstreamMessage::Enforce { action: EnforcementAction::EmergencyStop, reason }
                    if reason == "error budget burnt"
            ),
            "{message:?}"
        );
        assert!(plane.paused());
    }
    // The data plane that ramped goes back to the baseline: its tracker is stopped.
    tracker.emergency_stop();
    assert_eq!(tracker.percent_bp(), 0);
    assert!(!(0..1_000).any(|_| tracker.should_apply()));
    assert!(matches!(
        planes[1].send(proposal("prop_002")).await,
        Err(arqon_client::ClientError::Paused(_))
    ));
    let (_, state) = admin(&node, &operator, "GET", &base(TENANT), None).await;
    assert_eq!(state["paused"], true);
    assert_eq!(state["rollouts"], json!([]));

    let resume = json!({ "action": "resume" });
    let (status, body) = admin(&node, &operator, "POST", &path, Some(&resume)).await;
    assert_eq!(status, 200, "{body}");
    for plane in &mut planes {
        assert_eq!(
            next(plane).await,
            DownstreamMessage::Enforce {
                action: EnforcementAction::ResumeAdaptation,
                reason: "operator resume".to_owned()
            }
        );
        assert!(!plane.paused());
    }
    planes[1].send(proposal("prop_002")).await.unwrap();
    until_pending(&node, &operator, "prop_002").await;

    assert_audit_of_the_workflow(&node, &operator).await;
    assert!(
        timeout(Duration::from_millis(200), stranger.recv())
            .await
            .is_err(),
        "another tenant got acme's governance"
    );
}

// AC-GOV-18
#[tokio::test]
async fn ac_gov_18_a_data_plane_enforce_is_refused_counted_and_audited() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(gov_config(dir.path())).await.unwrap();
    let operator = gov_token(TENANT, "ops", Role::Operator);
    let token = gov_token(TENANT, "dp-1", Role::Dataplane);
    let mut plane = BusClient::connect(&node.socket_url(), &token)
        .await
        .unwrap();
    let mut bystander =
        BusClient::connect(&node.socket_url(), &gov_token(TENANT, "dp-2", Role::Agent))
            .await
            .unwrap();
    let enforce = v1::Enforce {
        reason: "take over".to_owned(),
        action: Some(v1::enforce::Action::EmergencyStop(v1::EmergencyStop {})),
    };
    plane
        .send_command(GovernanceCommand::Enforce(enforce))
        .await
        .unwrap();
    let DownstreamMessage::Refused { code, .. } = next(&mut plane).await else {
        panic!("a refusal")
    };
    assert_eq!(code, v1::ErrorCode::Forbidden);
    assert!(!plane.paused());
    assert_eq!(
        node.governance()
            .counters()
            .forbidden
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    let records = audit_records(&node, &operator).await;
    assert!(
        records.iter().any(|r| r["record"]["kind"] == "enforce"
            && r["record"]["outcome"] == "forbidden"
            && r["record"]["actor"] == "dp-1"),
        "{records:?}"
    );
    assert!(
        timeout(Duration::from_millis(200), bystander.recv())
            .await
            .is_err(),
        "a refused enforce reached a data plane"
    );
    // A user token may not use the admin API; no token is a 401.
    let user = gov_token(TENANT, "alice", Role::User);
    assert_eq!(admin(&node, &user, "GET", &base(TENANT), None).await.0, 403);
    assert_eq!(admin(&node, "", "GET", &base(TENANT), None).await.0, 401);
    // An operator of another tenant cannot reach acme.
    let foreign = gov_token("globex", "ops", Role::Operator);
    assert_eq!(
        admin(&node, &foreign, "GET", &base(TENANT), None).await.0,
        403
    );
}

// AC-GOV-19
#[tokio::test]
async fn ac_gov_19_a_tampered_approval_digest_is_refused_by_the_client_which_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let spine = Arc::new(EmbeddedSpine::new());
    let node = Node::start_with(
        gov_config(dir.path()),
        Arc::clone(&spine) as Arc<dyn Spine>,
        Hooks::default(),
    )
    .await
    .unwrap();
    let operator = gov_token(TENANT, "ops", Role::Operator);
    let token = gov_token(TENANT, "dp-1", Role::Agent);
    let mut plane = BusClient::connect(&node.socket_url(), &token)
        .await
        .unwrap();
    plane.send(proposal("prop_009")).await.unwrap();
    until_pending(&node, &operator, "prop_009").await;

    // A forged approval on gov.down: the right id, the digest of another proposal.
    let mut other = v1::Proposal {
        id: "prop_009".to_owned(),
        variant_id: Some(666),
        reason: "Latency regression detected".to_owned(),
        confidence: 0.92,
        ..v1::Proposal::default()
    };
    other.timestamp_us = 1;
    let forged = v1::Approval {
        proposal_id: "prop_009".to_owned(),
        proposal_digest: proposal_digest(&other),
        rollout: None,
    };
    let tenant = TenantId::parse(TENANT).unwrap();
    let mut header = server_header(&tenant, "forged-1".to_owned(), "", 1);
    header.protocol_version = PROTOCOL_VERSION;
    spine
        .publish(
            &Subject::gov_down(&tenant),
            Headers::new(),
            encode_envelope(&envelope(header, forged)),
        )
        .await
        .unwrap();
    let refused = next(&mut plane).await;
    assert!(
        matches!(&refused, DownstreamMessage::ApprovalRefused { proposal_id, reason }
            if proposal_id == "prop_009" && reason == "approval digest mismatch"),
        "{refused:?}"
    );
    // The client's alert reaches the control plane and is audited.
    timeout(WAIT, async {
        loop {
            let records = audit_records(&node, &operator).await;
            if records
                .iter()
                .any(|r| r["record"]["kind"] == "alert" && r["record"]["actor"] == "dp-1")
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the alert is audited");
    // The genuine approval still verifies.
    let path = format!("{}/proposals/prop_009/approve", base(TENANT));
    let (status, body) = admin(&node, &operator, "POST", &path, None).await;
    assert_eq!(status, 200, "{body}");
    let approval = next(&mut plane).await;
    assert!(
        matches!(&approval, DownstreamMessage::Approval { proposal_id, .. } if proposal_id == "prop_009"),
        "{approval:?}"
    );
}

// AC-GOV-21
#[tokio::test]
async fn ac_gov_21_on_nats_the_node_audits_into_jetstream() {
    let server = arqon_testkit::NatsServer::start_jetstream().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = gov_config(dir.path());
    config.spine.kind = arqon_config::SpineKind::Nats;
    config.spine.nats_urls = vec![server.url()];
    config.governance.audit_kind = arqon_config::AuditKind::Jetstream;
    let node = Node::start(config).await.unwrap();
    let operator = gov_token(TENANT, "ops", Role::Operator);
    let token = gov_token(TENANT, "dp-1", Role::Agent);
    let mut plane = BusClient::connect(&node.socket_url(), &token)
        .await
        .unwrap();
    plane.send(proposal("prop_nats")).await.unwrap();
    until_pending(&node, &operator, "prop_nats").await;
    let stop = json!({ "action": "emergency-stop" });
    let path = format!("{}/enforce", base(TENANT));
    let (status, body) = admin(&node, &operator, "POST", &path, Some(&stop)).await;
    assert_eq!(status, 200, "{body}");
    assert!(matches!(
        next(&mut plane).await,
        DownstreamMessage::Enforce {
            action: EnforcementAction::EmergencyStop,
            ..
        }
    ));
    let (status, body) = admin(
        &node,
        &operator,
        "GET",
        &format!("{}/audit/verify", base(TENANT)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // proposal, enforce, and the pending proposal's emergency_stop rejection at least.
    assert!(body["records"].as_u64().unwrap() >= 3, "{body}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing audited to files on NATS"
    );
}

//! `arq gov …` through the real binary against a real node (admin API on, dev keys, file audit),
//! with a data plane on `arqon-client` receiving what each command sends.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_auth::{Claims, DevKeys, Role};
use arqon_client::{BusClient, DownstreamMessage, EnforcementAction, Proposal};
use arqon_proto::names::{TenantId, UserId};
use arqon_shield::Node;
use tokio::time::timeout;

const WAIT: Duration = Duration::from_secs(20);

struct Fixture {
    node: Node,
    keys: PathBuf,
    audit: PathBuf,
    cwd: tempfile::TempDir,
}

impl Fixture {
    async fn start() -> Self {
        let cwd = tempfile::tempdir().unwrap();
        let keys = cwd.path().join("keys");
        DevKeys::generate().unwrap().save(&keys).unwrap();
        let audit = cwd.path().join("audit");
        let mut config = arqon_config::Config::dev_default();
        config.node.listen = "127.0.0.1:0".parse().unwrap();
        config.auth.dev_keys_dir.clone_from(&keys);
        config.governance.audit_path.clone_from(&audit);
        let node = Node::start(config).await.unwrap();
        Self {
            node,
            keys,
            audit,
            cwd,
        }
    }

    fn token(&self, user: &str, role: Role) -> String {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = Claims::dev(
            TenantId::parse("acme").unwrap(),
            UserId::parse(user).unwrap(),
            role,
            now,
            600,
        );
        DevKeys::load(&self.keys).unwrap().mint(&claims).unwrap()
    }

    /// Runs `arq gov <args> --url … --tenant acme --keys …` (a dev operator token).
    async fn gov(&self, args: &[&str]) -> (i32, String, String) {
        let url = format!("http://{}", self.node.local_addr());
        let keys = self.keys.display().to_string();
        let mut all: Vec<String> = vec!["gov".into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(["--url".into(), url, "--tenant".into(), "acme".into()]);
        all.extend(["--keys".into(), keys]);
        let cwd = self.cwd.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            crate::run(&refs, &cwd)
        })
        .await
        .unwrap()
    }

    /// Runs `arq gov proposals` until `id` is listed (one real command after another, no sleeps).
    async fn until_listed(&self, id: &str) -> String {
        timeout(WAIT, async {
            loop {
                let (code, out, err) = self.gov(&["proposals"]).await;
                assert_eq!(code, 0, "{err}");
                if out.contains(id) {
                    return out;
                }
            }
        })
        .await
        .expect("the proposal is listed")
    }
}

async fn next(client: &mut BusClient) -> DownstreamMessage {
    timeout(WAIT, client.recv()).await.unwrap().unwrap()
}

pub(crate) fn proposal(id: &str) -> Proposal {
    Proposal {
        id: id.to_owned(),
        variant_id: Some(42),
        reason: "latency".to_owned(),
        confidence: 0.95,
        ..Default::default()
    }
}

fn edit_record(file: &Path, seq: usize) {
    let text = std::fs::read_to_string(file).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let line = &mut lines[seq - 1];
    assert!(line.contains("\"outcome\":\""), "{line}");
    *line = line.replacen("\"outcome\":\"", "\"outcome\":\"x", 1);
    std::fs::write(file, lines.join("\n") + "\n").unwrap();
}

// AC-GOV-20
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ac_gov_20_every_gov_command_through_the_binary_and_verify_names_an_edited_record() {
    let fx = Fixture::start().await;
    let token = fx.token("dp-1", Role::Agent);
    let mut plane = BusClient::connect(&fx.node.socket_url(), &token)
        .await
        .unwrap();

    plane.send(proposal("prop_1")).await.unwrap();
    let listed = fx.until_listed("prop_1").await;
    assert!(listed.contains("pending proposals: 1"), "{listed}");
    let (code, out, err) = fx
        .gov(&[
            "approve",
            "prop_1",
            "--initial",
            "5",
            "--step",
            "10",
            "--max",
            "50",
        ])
        .await;
    assert_eq!(code, 0, "{out}{err}");
    let DownstreamMessage::Approval { rollout, .. } = next(&mut plane).await else {
        panic!("an approval")
    };
    assert_eq!(
        (
            rollout.config.initial_bp,
            rollout.config.increment_bp_per_minute,
            rollout.config.max_bp
        ),
        (500, 1_000, 5_000)
    );
    let (code, _, err) = fx.gov(&["reject", "nope"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("NOT_FOUND"), "{err}");

    // One rollout may ramp at a time (the default rules), so the second waits for an operator.
    plane.send(proposal("prop_2")).await.unwrap();
    fx.until_listed("prop_2").await;
    let (code, _, err) = fx.gov(&["reject", "prop_2", "--reason", "not now"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        next(&mut plane).await,
        DownstreamMessage::Rejection {
            proposal_id: "prop_2".into(),
            reason: "not now".into()
        }
    );

    for (args, expected) in [
        (
            &["enforce", "set-variant", "7"][..],
            EnforcementAction::SetVariant(7),
        ),
        (
            &["enforce", "pause"][..],
            EnforcementAction::PauseAdaptation,
        ),
        (
            &["enforce", "resume"][..],
            EnforcementAction::ResumeAdaptation,
        ),
        (
            &["enforce", "emergency-stop"][..],
            EnforcementAction::EmergencyStop,
        ),
    ] {
        let (code, _, err) = fx.gov(args).await;
        assert_eq!(code, 0, "{args:?}: {err}");
        let message = next(&mut plane).await;
        assert!(
            matches!(&message, DownstreamMessage::Enforce { action, .. } if *action == expected),
            "{args:?}: {message:?}"
        );
    }
    assert!(plane.paused());
    let listed = fx.until_listed("paused: true").await;
    assert!(listed.contains("rollouts in flight: 0"), "{listed}");

    let (code, out, err) = fx.gov(&["audit"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.lines().count() >= 8, "{out}");
    assert!(out.contains("enforce") && out.contains("approval"), "{out}");
    let (code, out, err) = fx.gov(&["audit", "--verify"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("verifies"), "{out}");

    edit_record(&fx.audit.join("acme.audit.jsonl"), 3);
    let (code, _, err) = fx.gov(&["audit", "--verify"]).await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("first bad record seq 3"), "{err}");
}

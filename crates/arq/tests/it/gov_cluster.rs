//! Governance on several real nodes (issue 16, specs/lease.md): two `arq serve` processes on a real
//! three-server NATS cluster with `JetStream`, the audit chains in `JetStream`. A data plane and an
//! operator (`arq gov`) use the node that is not the writer; then the NATS server under the writer
//! is killed, then the writer itself (SIGKILL). Nothing committed is lost, the chain never forks,
//! and the control plane's state outlives its writer.

use std::path::Path;
use std::time::Duration;

use arqon_auth::Role;
use arqon_client::{BusClient, DownstreamMessage, EnforcementAction};
use arqon_testkit::{JwtIssuer, NatsCluster};
use tokio::time::timeout;

use crate::cli_gov::proposal;
use crate::cli_serve::{Served, serve, write_node_config};

const TENANT: &str = "acme";
/// Bound on every wait: a failover takes the lease's ttl (10 s) and a retry.
const WAIT: Duration = Duration::from_mins(1);

fn node_config(dir: &Path, id: &str, urls: &[String], first: usize, jwks: &Path) -> String {
    let mut ordered = urls.to_vec();
    ordered.rotate_left(first);
    let urls: Vec<String> = ordered.iter().map(|u| format!("\"{u}\"")).collect();
    let sections = format!(
        r#"[node]
id = "{id}"
listen = "127.0.0.1:0"
dev = true
drain_timeout = "2s"

[spine]
kind = "nats"
nats_urls = [{urls}]

[governance]
audit_kind = "jetstream"

[admin]
enabled = true
"#,
        urls = urls.join(", ")
    );
    write_node_config(dir, id, &sections, jwks)
        .display()
        .to_string()
}

/// An operator running `arq gov <args> --url http://<node> --tenant acme --token <admin>`.
struct Operator<'a> {
    token: String,
    cwd: &'a Path,
}

impl Operator<'_> {
    /// One `arq gov` run against the node at `addr`, off the runtime.
    async fn gov(&self, addr: &str, args: &[&str]) -> (i32, String, String) {
        let mut all: Vec<String> = vec!["gov".into()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        all.extend(["--url".into(), format!("http://{addr}")]);
        all.extend(["--tenant".into(), TENANT.into(), "--token".into()]);
        all.extend([self.token.clone(), "--color".into(), "never".into()]);
        let cwd = self.cwd.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let refs: Vec<&str> = all.iter().map(String::as_str).collect();
            crate::run(&refs, &cwd)
        })
        .await
        .expect("arq gov")
    }

    /// Runs `arq gov <args>` until it exits 0 and its output holds `needle` (a real command after
    /// another: during a reconnect or a failover the node answers 503 for a moment).
    async fn until(&self, addr: &str, args: &[&str], needle: &str) -> String {
        let mut last = String::new();
        let found = timeout(WAIT, async {
            loop {
                let (code, out, err) = self.gov(addr, args).await;
                if code == 0 && out.contains(needle) {
                    return out;
                }
                last = format!("exit {code}: {out}{err}");
            }
        })
        .await;
        found.unwrap_or_else(|_| panic!("arq gov {args:?} never printed {needle:?}; last: {last}"))
    }
}

async fn next(plane: &mut BusClient) -> DownstreamMessage {
    timeout(WAIT, plane.recv())
        .await
        .expect("a governance message in time")
        .expect("the data plane is connected")
}

// AC-LEASE-11, AC-LEASE-12
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ac_lease_12_governance_on_two_nodes_survives_a_nats_kill_and_a_writer_kill() {
    let mut nats = NatsCluster::start(3).await.expect("nats cluster");
    let urls = nats.urls();
    let dir = tempfile::tempdir().expect("tempdir");
    let issuer = JwtIssuer::new().expect("issuer");
    let jwks = dir.path().join("jwks.json");
    issuer.write_jwks(&jwks).expect("jwks");
    let ops = Operator {
        token: issuer
            .token(TENANT, "ops-1", Role::Admin, Duration::from_hours(1))
            .expect("token"),
        cwd: dir.path(),
    };
    let agent = issuer
        .token(TENANT, "dp-1", Role::Agent, Duration::from_hours(1))
        .expect("token");

    // Node A serves the tenant first, so it is the writer; node B follows.
    let a_config = node_config(dir.path(), "gov-a", &urls, 0, &jwks);
    let a: Served = serve(&["--config", &a_config], dir.path());
    let writer_plane = BusClient::connect(&format!("ws://{}/v1/socket", a.addr), &agent)
        .await
        .expect("connect to A");
    ops.until(&a.addr, &["proposals"], "paused: false").await;
    let b_config = node_config(dir.path(), "gov-b", &urls, 1, &jwks);
    let b: Served = serve(&["--config", &b_config], dir.path());

    // A data plane on B proposes; the operator on B lists it and approves it: both reach A.
    let mut plane = BusClient::connect(&format!("ws://{}/v1/socket", b.addr), &agent)
        .await
        .expect("connect to B");
    plane.send(proposal("prop_1")).await.expect("propose");
    ops.until(&b.addr, &["proposals"], "prop_1").await;
    let approve = [
        "approve",
        "prop_1",
        "--initial",
        "5",
        "--step",
        "1",
        "--max",
        "50",
    ];
    let (code, out, err) = ops.gov(&b.addr, &approve).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        matches!(next(&mut plane).await, DownstreamMessage::Approval { .. }),
        "the approval reaches the data plane on B"
    );

    // The NATS server under the writer goes: A's spine moves to another server, the chain (three
    // replicas) keeps every record, and the writer goes on deciding.
    nats.kill(0).await.expect("kill nats 0");
    let before = ops.until(&b.addr, &["audit"], "approval").await;
    ops.until(&b.addr, &["audit", "--verify"], "verifies").await;
    ops.until(&b.addr, &["enforce", "pause"], "enforced pause")
        .await;
    assert!(
        matches!(
            next(&mut plane).await,
            DownstreamMessage::Enforce {
                action: EnforcementAction::PauseAdaptation,
                ..
            }
        ),
        "the pause reaches the data plane"
    );

    // The writer is killed: B takes the lease, resumes the chain and the control plane from the
    // checkpoint, and still holds the pause and the rollout.
    drop(writer_plane);
    let mut guard = a.guard;
    let mut child = guard.0.take().expect("A runs");
    child.kill().expect("SIGKILL A");
    child.wait().expect("A exits");
    let killed = std::time::Instant::now();
    let listed = ops.until(&b.addr, &["proposals"], "paused: true").await;
    assert!(listed.contains("rollouts in flight: 1"), "{listed}");
    println!(
        "governance failover, writer SIGKILLed -> the other node answers as writer: {:?}",
        killed.elapsed()
    );
    ops.until(&b.addr, &["enforce", "resume"], "enforced resume")
        .await;
    ops.until(&b.addr, &["audit", "--verify"], "verifies").await;
    let after = ops.until(&b.addr, &["audit"], "resume").await;
    // Every record listed before the kills is still there, in the same place: no fork, no loss.
    for line in before.lines() {
        assert!(after.contains(line), "{line} lost from\n{after}");
    }
    assert!(after.lines().count() > before.lines().count(), "{after}");
    drop(b);
}

//! Benchmark: emergency-stop fan-out latency, from the operator's admin command until the last of
//! N connected data planes has it (`specs/governance.md`, performance budget; `BENCHMARKS.md`).
//!
//! `cargo run --release -p arqon-client --example gov_fanout -- [planes] [rounds]`
//! (defaults 1000 and 50). One node (embedded spine, file audit with fsync, admin API) and N
//! `BusClient` data planes in this process, over loopback `WebSockets`. Each round sends
//! `emergency-stop` through `POST /admin/v1/tenants/bench/governance/enforce`, waits until every
//! plane has it, then `resume` (not timed) and waits again. Prints p50/p99/max over the rounds.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use arqon_auth::{Claims, DevKeys, Role};
use arqon_client::{BusClient, DownstreamMessage, EnforcementAction};
use arqon_proto::names::{TenantId, UserId};
use arqon_shield::Node;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::mpsc;

const TENANT: &str = "bench";

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn token(keys: &DevKeys, user: &str, role: Role) -> anyhow::Result<String> {
    let claims = Claims::dev(
        TenantId::parse(TENANT)?,
        UserId::parse(user)?,
        role,
        now_secs(),
        3_600,
    );
    Ok(keys.mint(&claims)?)
}

async fn enforce(node: &Node, operator: &str, action: &str) -> anyhow::Result<()> {
    let mut stream = tokio::net::TcpStream::connect(node.local_addr()).await?;
    let body = format!(r#"{{"action":"{action}"}}"#);
    let request = format!(
        "POST /admin/v1/tenants/{TENANT}/governance/enforce HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {operator}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    if !text.starts_with("HTTP/1.1 200") {
        bail!("enforce {action}: {text}");
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short, non-empty list"
    )]
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let planes: usize = args.next().map_or(Ok(1_000), |a| a.parse())?;
    let rounds: usize = args.next().map_or(Ok(50), |a| a.parse())?;
    let dir = tempfile::tempdir()?;
    let keys = DevKeys::generate()?;
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse()?;
    config.auth.jwks = Some(keys.to_jwks_json());
    config.governance.audit_path = dir.path().to_path_buf();
    let node = Node::start(config).await?;
    let operator = token(&keys, "ops", Role::Operator)?;

    // Each plane reports (round, which action) when it has it.
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<(bool, Instant)>();
    let started = Instant::now();
    for i in 0..planes {
        let mut client = BusClient::connect(
            &node.socket_url(),
            &token(&keys, &format!("dp-{i}"), Role::Agent)?,
        )
        .await
        .with_context(|| format!("data plane {i}"))?;
        let seen = seen_tx.clone();
        tokio::spawn(async move {
            while let Ok(message) = client.recv().await {
                if let DownstreamMessage::Enforce { action, .. } = message {
                    let stop = action == EnforcementAction::EmergencyStop;
                    if seen.send((stop, Instant::now())).is_err() {
                        return;
                    }
                }
            }
        });
    }
    eprintln!("{planes} data planes connected in {:?}", started.elapsed());
    // Serve the tenant before timing (opens and verifies its audit chain once).
    enforce(&node, &operator, "resume").await?;
    for _ in 0..planes {
        seen.recv().await.context("a plane stopped")?;
    }

    let mut latencies = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t0 = Instant::now();
        enforce(&node, &operator, "emergency-stop").await?;
        let mut last = t0;
        for _ in 0..planes {
            let (stop, at) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
                .await?
                .context("a plane stopped")?;
            if !stop {
                bail!("a resume arrived in a stop round");
            }
            last = last.max(at);
        }
        latencies.push(last - t0);
        enforce(&node, &operator, "resume").await?;
        for _ in 0..planes {
            seen.recv().await.context("a plane stopped")?;
        }
    }
    latencies.sort();
    println!(
        "emergency-stop fan-out to {planes} data planes, {rounds} rounds: p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
    Ok(())
}

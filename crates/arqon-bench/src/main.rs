//! `arqon-bench`: the load tool. Runs the same workloads against an ArqonBus node and nats-server's
//! WebSocket listener in one run, and prints p50/p99/p999 and the ratios between them.

mod baseline;
mod client;
mod drain;
mod history;
mod procs;
mod scenarios;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use arqon_auth::Role;
use arqon_testkit::JwtIssuer;
use clap::Parser;
use serde_json::json;

use crate::client::Target;
use crate::scenarios::Profile;

/// Benchmarks an ArqonBus node side by side with nats-server's WebSocket listener.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The `arq` binary to run the node with (build it with `cargo build --release -p arq`).
    #[arg(long, default_value = "target/release/arq")]
    arq: PathBuf,
    /// The nats-server binary (the peer).
    #[arg(long, default_value = "/usr/sbin/nats-server")]
    nats_server: PathBuf,
    /// `quick` (seconds, for smoke tests), `ci` (the short fixed run ACES judges, `ci/bench.sh`) or
    /// `full` (the figures in BENCHMARKS.md).
    #[arg(long, default_value = "full")]
    profile: String,
    /// A baseline of ratios (`ci/perf-baseline.json`): print, as the last line, one JSON object
    /// `{"benches": [{name, ratio, baseline, better, tolerance}]}` for the ACES perf stage.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Instead of the peer comparison: history on vs off on both spines, and the time to recover
    /// 10,000 missed messages (`specs/history.md`).
    #[arg(long)]
    history: bool,
    /// Instead of the peer comparison: connect this many clients to a node, send it SIGTERM and
    /// time the drain (process exit, and each client's disconnect).
    #[arg(long, value_name = "CLIENTS")]
    drain: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let profile = match args.profile.as_str() {
        "quick" => Profile::QUICK,
        "ci" => Profile::CI,
        "full" => Profile::FULL,
        other => anyhow::bail!("unknown profile {other:?}: quick, ci or full"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime.block_on(run(&args, profile))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if let Some(path) = &args.baseline {
        let benches = baseline::join(path, &report["ratios"])?;
        println!("{}", json!({ "benches": benches }));
    }
    Ok(())
}

fn failed(
    name: &str,
    scenario: &str,
    error: &anyhow::Error,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    println!("{name:9} {scenario:11} FAILED: {error:#}");
    result.insert(format!("{scenario}_error"), json!(format!("{error:#}")));
}

async fn run(args: &Args, profile: Profile) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let issuer = JwtIssuer::new()?;
    let jwks = dir.path().join("jwks.json");
    issuer.write_jwks(&jwks)?;
    let token = issuer.token("bench", "load", Role::User, Duration::from_hours(1))?;
    if let Some(clients) = args.drain {
        let report = drain::run(&args.arq, dir.path(), &jwks, &token, clients).await?;
        return Ok(json!({ "profile": profile, "drain": report, "ratios": {} }));
    }
    if args.history {
        println!("profile: {profile:?} (history)");
        let report = history::run(
            &args.arq,
            &args.nats_server,
            &token,
            dir.path(),
            &jwks,
            profile,
        )
        .await?;
        return Ok(json!({ "profile": profile, "history": report, "ratios": {} }));
    }
    let (node, node_url) = procs::start_node(&args.arq, dir.path(), &jwks)?;
    let (nats, nats_url) = procs::start_nats_ws(&args.nats_server, dir.path())?;
    let targets = [
        (
            Target::Arqon {
                url: node_url,
                token,
            },
            &node,
        ),
        (Target::NatsWs { url: nats_url }, &nats),
    ];
    println!("profile: {profile:?}");
    let mut results = serde_json::Map::new();
    for (target, proc) in &targets {
        let result = measure(target, proc, profile).await;
        results.insert(target.name().to_owned(), serde_json::Value::Object(result));
    }
    let ratio = |path: &[&str]| -> Option<f64> {
        let get = |name: &str| {
            path.iter()
                .try_fold(&results[name], |v, key| v.get(*key))
                .and_then(serde_json::Value::as_f64)
        };
        Some(get("arqonbus")? / get("nats-ws")?.max(f64::MIN_POSITIVE))
    };
    let ratios = json!({
        "connect_p99": ratio(&["connect", "p99_us"]),
        "handshake_p99": ratio(&["handshake", "p99_us"]),
        "handshakes_per_sec": ratio(&["handshakes_per_sec"]),
        "pubsub_p50": ratio(&["pubsub", "p50_us"]),
        "pubsub_p99": ratio(&["pubsub", "p99_us"]),
        "throughput": ratio(&["throughput_per_sec"]),
        "idle_kib_per_connection": ratio(&["idle_kib_per_connection"]),
    });
    println!(
        "ratios arqonbus / nats-ws (lower is better for latency and memory, higher for throughput): {ratios}"
    );
    Ok(json!({ "profile": profile, "results": results, "ratios": ratios }))
}

/// Runs every scenario against `target` (served by `proc`); a scenario that fails is reported, and
/// the others still run.
async fn measure(
    target: &Target,
    proc: &procs::Proc,
    profile: Profile,
) -> serde_json::Map<String, serde_json::Value> {
    let name = target.name();
    let mut result = serde_json::Map::new();
    match scenarios::handshake(target, profile.serial_handshakes, 1).await {
        Ok((hs, _)) => {
            stats::print_latency(name, "connect", &hs, "connects, one at a time");
            result.insert("connect".into(), json!(hs));
        }
        Err(error) => failed(name, "connect", &error, &mut result),
    }
    let storm = scenarios::handshake(target, profile.handshakes, profile.handshake_concurrency);
    match storm.await {
        Ok((hs, rate)) => {
            let note = format!(
                "connects, {} at once, {rate:.0}/s",
                profile.handshake_concurrency
            );
            stats::print_latency(name, "handshake", &hs, &note);
            result.insert("handshake".into(), json!(hs));
            result.insert("handshakes_per_sec".into(), json!(rate));
        }
        Err(error) => failed(name, "handshake", &error, &mut result),
    }
    match scenarios::pubsub_latency(target, profile).await {
        Ok((lat, delivered)) => {
            let note = format!("deliveries, {:.1}% delivered", delivered * 100.0);
            stats::print_latency(name, "pub→sub", &lat, &note);
            result.insert("pubsub".into(), json!(lat));
            result.insert("pubsub_delivered".into(), json!(delivered));
        }
        Err(error) => failed(name, "pubsub", &error, &mut result),
    }
    match scenarios::throughput(target, profile).await {
        Ok((tput, share)) => {
            println!(
                "{name:9} throughput  {tput:>10.0} deliveries/s  ({:.1}% of published × subscribers)",
                share * 100.0
            );
            result.insert("throughput_per_sec".into(), json!(tput));
            result.insert("throughput_delivered".into(), json!(share));
        }
        Err(error) => failed(name, "throughput", &error, &mut result),
    }
    match scenarios::idle_memory(target, profile, || proc.rss_kib()).await {
        Ok((rss, per_conn)) => {
            println!(
                "{name:9} idle        {per_conn:>7.1} KiB per connection  (RSS {rss} KiB with {} idle connections)",
                profile.idle_connections
            );
            result.insert("idle_rss_kib".into(), json!(rss));
            result.insert("idle_kib_per_connection".into(), json!(per_conn));
        }
        Err(error) => failed(name, "idle", &error, &mut result),
    }
    result
}

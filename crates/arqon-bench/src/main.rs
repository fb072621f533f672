//! `arqon-bench`: the load tool. Runs the same workloads against an ArqonBus node and nats-server's
//! WebSocket listener in one run, and prints p50/p99/p999 and the ratios between them.

mod client;
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
    /// `quick` (seconds, for smoke tests) or `full` (the figures in BENCHMARKS.md).
    #[arg(long, default_value = "full")]
    profile: String,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let profile = match args.profile.as_str() {
        "quick" => Profile::QUICK,
        "full" => Profile::FULL,
        other => anyhow::bail!("unknown profile {other:?}: quick or full"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    let report = runtime.block_on(run(&args, profile))?;
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

async fn run(args: &Args, profile: Profile) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let issuer = JwtIssuer::new()?;
    let jwks = dir.path().join("jwks.json");
    issuer.write_jwks(&jwks)?;
    let token = issuer.token("bench", "load", Role::User, Duration::from_hours(1))?;
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
        let name = target.name();
        let (hs, rate) = scenarios::handshake(target, profile).await?;
        println!(
            "{name:9} handshake   p50 {:>7} µs  p99 {:>7} µs  p999 {:>7} µs  ({} connects, {rate:.0}/s)",
            hs.p50_us, hs.p99_us, hs.p999_us, hs.count
        );
        let (lat, delivered) = scenarios::pubsub_latency(target, profile).await?;
        println!(
            "{name:9} pub→sub     p50 {:>7} µs  p99 {:>7} µs  p999 {:>7} µs  ({} deliveries, {:.1}% delivered)",
            lat.p50_us,
            lat.p99_us,
            lat.p999_us,
            lat.count,
            delivered * 100.0
        );
        let (tput, share) = scenarios::throughput(target, profile).await?;
        println!(
            "{name:9} throughput  {tput:>10.0} deliveries/s  ({:.1}% of published × subscribers)",
            share * 100.0
        );
        let (rss, per_conn) = scenarios::idle_memory(target, profile, || proc.rss_kib()).await?;
        println!(
            "{name:9} idle        {per_conn:>7.1} KiB per connection  (RSS {rss} KiB with {} idle connections)",
            profile.idle_connections
        );
        results.insert(
            name.to_owned(),
            json!({
                "handshake": hs, "handshakes_per_sec": rate,
                "pubsub": lat, "pubsub_delivered": delivered,
                "throughput_per_sec": tput, "throughput_delivered": share,
                "idle_rss_kib": rss, "idle_kib_per_connection": per_conn,
            }),
        );
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
        "handshake_p99": ratio(&["handshake", "p99_us"]),
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

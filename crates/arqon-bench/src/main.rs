//! `arqon-bench`: the load tool. Runs the same workloads against an ArqonBus node and nats-server's
//! WebSocket listener in one run, and prints p50/p99/p999 and the ratios between them.

mod baseline;
mod client;
mod costs;
mod drain;
mod history;
mod procs;
mod rounds;
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
use crate::rounds::Rounds;

/// The load generator shares the machine's cores with the systems it measures, so its own work per
/// delivery should be small: glibc's allocator spent a tenth of its time zeroing pages it had given
/// back (a profile of the throughput workload), mimalloc keeps them. The same for both systems.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    /// Run only these workloads (comma-separated): connect, storm, pubsub, throughput, idle, and
    /// the ArqonBus-only costs `traces` (throughput with spans exported vs not) and `policy`
    /// (pub→sub with a one-policy chain vs none). Default: all.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Measure only these systems (comma-separated): arqonbus, nats-ws. Default: both.
    #[arg(long, value_delimiter = ',')]
    targets: Vec<String>,
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
                token: token.clone(),
            },
            &node,
        ),
        (Target::NatsWs { url: nats_url }, &nats),
    ];
    println!("profile: {profile:?}");
    let chosen = Chosen::new(&args.only);
    let active: Vec<(&Target, &procs::Proc)> = targets
        .iter()
        .filter(|(target, _)| {
            args.targets.is_empty() || args.targets.iter().any(|t| t == target.name())
        })
        .map(|(target, proc)| (target, *proc))
        .collect();
    let mut results = serde_json::Map::new();
    for (target, proc) in &active {
        println!("{:9} pid {}", target.name(), proc.pid());
        let result = measure(target, proc, profile, &chosen).await;
        results.insert(target.name().to_owned(), serde_json::Value::Object(result));
    }
    // Connects, the storm, pub→sub and throughput: in rounds alternating the systems; their ratios
    // are the median rounds'.
    let mut round_ratios = serde_json::Map::new();
    for (name, workload) in [
        ("connect", Rounded::Connect),
        ("storm", Rounded::Storm),
        ("pubsub", Rounded::PubSub),
    ] {
        if chosen.runs(name) {
            in_rounds(workload, &active, profile, &mut results, &mut round_ratios).await;
        }
    }
    if chosen.runs("throughput") {
        throughputs(&active, profile, &mut results, &mut round_ratios).await;
    }
    drop(active);
    drop(targets);
    drop((node, nats));
    let setup = costs::Setup {
        arq: &args.arq,
        dir: dir.path(),
        jwks: &jwks,
        token: &token,
    };
    let costs = costs::run(&setup, profile, |name| chosen.runs(name)).await;
    let mut ratios = ratios(&results, profile);
    // Connects, the storm, pub→sub and throughput: the median of the rounds' paired ratios, where
    // both systems ran.
    ratios.extend(round_ratios);
    println!(
        "ratios arqonbus / nats-ws (lower is better for latency and memory, higher for throughput): {}",
        serde_json::Value::Object(ratios.clone())
    );
    if !costs.is_empty() {
        println!(
            "costs (ArqonBus against itself): {}",
            serde_json::Value::Object(costs.clone())
        );
    }
    Ok(json!({ "profile": profile, "results": results, "ratios": ratios, "costs": costs }))
}

/// ArqonBus / nats-server for every figure both reported, from each system's folded figures (the
/// medians of its rounds). Where both systems reported a figure in every round, `run` replaces
/// these with the median of the rounds' paired ratios; idle memory, measured once, stays as is.
fn ratios(
    results: &serde_json::Map<String, serde_json::Value>,
    profile: Profile,
) -> serde_json::Map<String, serde_json::Value> {
    let ratio = |path: &[&str]| -> Option<f64> {
        let get = |name: &str| {
            path.iter()
                .try_fold(results.get(name)?, |v, key| v.get(*key))
                .and_then(serde_json::Value::as_f64)
        };
        Some(get("arqonbus")? / get("nats-ws")?.max(f64::MIN_POSITIVE))
    };
    let mut ratios = serde_json::Map::new();
    for (name, path) in [
        ("connect_p99", &["connect", "p99_us"][..]),
        ("handshake_p99", &["handshake", "p99_us"]),
        ("handshakes_per_sec", &["handshakes_per_sec"]),
        ("pubsub_p50", &["pubsub", "p50_us"]),
        ("pubsub_p99", &["pubsub", "p99_us"]),
        ("throughput", &["throughput_per_sec"]),
        ("idle_kib_per_connection", &["idle_kib_per_connection"]),
    ] {
        ratios.insert(name.to_owned(), json!(ratio(path)));
    }
    for fanout in profile.fanouts.iter().skip(1) {
        let key = format!("throughput_fanout_{fanout}_per_sec");
        ratios.insert(format!("throughput_fanout_{fanout}"), json!(ratio(&[&key])));
    }
    ratios
}

/// CPU time used by the server under test and by this load generator during one workload.
struct CpuMeter<'a> {
    proc: &'a procs::Proc,
    start: Option<(Duration, Duration)>,
    /// Set by a second [`CpuMeter::mark`]; without it the meter reads the end when it reports.
    end: Option<(Duration, Duration)>,
}

impl<'a> CpuMeter<'a> {
    fn read(proc: &procs::Proc) -> Option<(Duration, Duration)> {
        Some((proc.cpu().ok()?, procs::cpu_time("self").ok()?))
    }

    fn start(proc: &'a procs::Proc) -> Self {
        Self {
            proc,
            start: Self::read(proc),
            end: None,
        }
    }

    /// A meter that starts at its first [`CpuMeter::mark`] and stops at its second.
    fn unstarted(proc: &'a procs::Proc) -> Self {
        Self {
            proc,
            start: None,
            end: None,
        }
    }

    fn mark(&mut self) {
        if self.start.is_none() {
            self.start = Self::read(self.proc);
        } else {
            self.end = Self::read(self.proc);
        }
    }

    /// Prints and records the CPU per `unit` (`count` of them) as `<key>_server_cpu_ns` and
    /// `<key>_client_cpu_ns`.
    fn report(
        self,
        name: &str,
        key: &str,
        unit: &str,
        count: u64,
        result: &mut serde_json::Map<String, serde_json::Value>,
    ) {
        let end = self.end.or_else(|| Self::read(self.proc));
        let (Some((server0, client0)), Some((server1, client1))) = (self.start, end) else {
            return;
        };
        #[allow(clippy::cast_precision_loss)]
        let per = |d: Duration| d.as_secs_f64() * 1e9 / count.max(1) as f64;
        let server = per(server1.saturating_sub(server0));
        let client = per(client1.saturating_sub(client0));
        println!(
            "{name:9} cpu         {server:>7.0} ns server, {client:>7.0} ns load generator, per {unit}"
        );
        result.insert(format!("{key}_server_cpu_ns"), json!(server));
        result.insert(format!("{key}_client_cpu_ns"), json!(client));
    }
}

/// The workloads `--only` chose.
struct Chosen(Vec<String>);

impl Chosen {
    fn new(only: &[String]) -> Self {
        Self(only.to_vec())
    }

    fn runs(&self, scenario: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|s| s == scenario)
    }
}

/// Runs the chosen single-round scenario (idle memory) against `target` (served by `proc`); a
/// scenario that fails is reported, and the others still run. Connects one at a time, the storm,
/// pub→sub and throughput run afterwards, in rounds across both systems (`in_rounds`,
/// `throughputs`).
async fn measure(
    target: &Target,
    proc: &procs::Proc,
    profile: Profile,
    chosen: &Chosen,
) -> serde_json::Map<String, serde_json::Value> {
    let mut result = serde_json::Map::new();
    // First, on the fresh process: later workloads free memory that new connections would reuse,
    // and RSS growth would then undercount them.
    if chosen.runs("idle") {
        idle(target, proc, profile, &mut result).await;
    }
    result
}

/// A workload that runs in `profile.rounds` rounds alternating the systems; (c), throughput, has
/// its own loop over the fan-outs.
#[derive(Clone, Copy)]
enum Rounded {
    /// (a1) Connects one at a time.
    Connect,
    /// (a2) The connect storm.
    Storm,
    /// (b) Pub→sub latency.
    PubSub,
}

impl Rounded {
    fn label(self) -> &'static str {
        match self {
            Rounded::Connect => "connect",
            Rounded::Storm => "storm",
            Rounded::PubSub => "pub→sub",
        }
    }

    /// The ratios it reports: their names, and where each system's figure is.
    fn ratios(self) -> &'static [(&'static str, &'static [&'static str])] {
        match self {
            Rounded::Connect => &[("connect_p99", &["connect", "p99_us"])],
            Rounded::Storm => &[
                ("handshakes_per_sec", &["handshakes_per_sec"]),
                ("handshake_p99", &["handshake", "p99_us"]),
            ],
            Rounded::PubSub => &[
                ("pubsub_p50", &["pubsub", "p50_us"]),
                ("pubsub_p99", &["pubsub", "p99_us"]),
            ],
        }
    }
}

/// Runs `workload` in `profile.rounds` rounds alternating the systems: each system's figures are
/// the medians of its rounds' (into `results`), and each ratio the median round's (into `ratios`,
/// with every round's as `<name>_round_ratios`).
async fn in_rounds(
    workload: Rounded,
    active: &[(&Target, &procs::Proc)],
    profile: Profile,
    results: &mut serde_json::Map<String, serde_json::Value>,
    ratios: &mut serde_json::Map<String, serde_json::Value>,
) {
    let rounds = Rounds::run(active, profile.rounds, workload.label(), |target, proc| {
        Box::pin(async move {
            let mut figures = rounds::Figures::new();
            match workload {
                Rounded::Connect => connect(target, profile, &mut figures).await,
                Rounded::Storm => storm(target, proc, profile, &mut figures).await,
                Rounded::PubSub => pubsub(target, profile, &mut figures).await,
            }
            figures
        })
    })
    .await;
    rounds.record(results, ratios, workload.ratios());
}

/// (c) The throughput workload at every fan-out, in `profile.rounds` rounds alternating the
/// systems: each system's figures are the medians of its rounds' (the rates kept as
/// `<key>_rounds`), and each fan-out's ratio the median round's.
async fn throughputs(
    active: &[(&Target, &procs::Proc)],
    profile: Profile,
    results: &mut serde_json::Map<String, serde_json::Value>,
    ratios: &mut serde_json::Map<String, serde_json::Value>,
) {
    for (i, fanout) in profile.fanouts.iter().enumerate() {
        let key = if i == 0 {
            "throughput".to_owned()
        } else {
            format!("throughput_fanout_{fanout}")
        };
        let label = format!("throughput, fan-out {fanout},");
        let rounds = Rounds::run(active, profile.rounds, &label, |target, proc| {
            let key = key.clone();
            Box::pin(async move {
                let mut figures = rounds::Figures::new();
                throughput(target, proc, profile, *fanout, &key, &mut figures).await;
                figures
            })
        })
        .await;
        rounds.fold_into(results);
        let rate = format!("{key}_per_sec");
        for (target, _) in active {
            let rates = rounds.values(target.name(), &[&rate]);
            if let Some(result) = results
                .get_mut(target.name())
                .and_then(serde_json::Value::as_object_mut)
            {
                result.insert(format!("{key}_rounds"), json!(rates));
            }
        }
        if let Some(ratio) = rounds.ratio(&[&rate]) {
            rounds::print_ratio(&format!("throughput ratio, fan-out {fanout}"), &ratio);
            ratios.insert(key.clone(), json!(ratio.0));
            ratios.insert(format!("{key}_round_ratios"), json!(ratio.1));
        }
    }
}

/// (a1) Connects one at a time.
async fn connect(
    target: &Target,
    profile: Profile,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    let name = target.name();
    match scenarios::handshake(target, profile.serial_handshakes, 1).await {
        Ok((hs, _)) => {
            stats::print_latency(name, "connect", &hs, "connects, one at a time");
            result.insert("connect".into(), json!(hs));
        }
        Err(error) => stats::failed(name, "connect", &error, result),
    }
}

async fn storm(
    target: &Target,
    proc: &procs::Proc,
    profile: Profile,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    let name = target.name();
    let meter = CpuMeter::start(proc);
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
            meter.report(name, "handshake", "connect", hs.count as u64, result);
        }
        Err(error) => stats::failed(name, "handshake", &error, result),
    }
}

async fn pubsub(
    target: &Target,
    profile: Profile,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    let name = target.name();
    match scenarios::pubsub_latency(target, profile).await {
        Ok((lat, delivered)) => {
            let note = format!("deliveries, {:.1}% delivered", delivered * 100.0);
            stats::print_latency(name, "pub→sub", &lat, &note);
            result.insert("pubsub".into(), json!(lat));
            result.insert("pubsub_delivered".into(), json!(delivered));
        }
        Err(error) => stats::failed(name, "pubsub", &error, result),
    }
}

async fn throughput(
    target: &Target,
    proc: &procs::Proc,
    profile: Profile,
    fanout: usize,
    key: &str,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    let name = target.name();
    // Read between the marks: publishing and delivering, not the subscribers' connects and closes.
    let mut meter = CpuMeter::unstarted(proc);
    let marked = scenarios::throughput_marked(target, profile, fanout, || meter.mark()).await;
    match marked {
        Ok((tput, share, delivered)) => {
            println!(
                "{name:9} throughput  {tput:>10.0} deliveries/s  to {fanout} subscribers ({:.1}% of published × subscribers)",
                share * 100.0
            );
            result.insert(format!("{key}_per_sec"), json!(tput));
            result.insert(format!("{key}_delivered"), json!(share));
            meter.report(name, key, "delivery", delivered, result);
        }
        Err(error) => stats::failed(name, key, &error, result),
    }
}

async fn idle(
    target: &Target,
    proc: &procs::Proc,
    profile: Profile,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    let name = target.name();
    let fds = proc.open_fds().unwrap_or(usize::MAX);
    match scenarios::idle_memory(target, profile, || proc.rss_kib()).await {
        Ok((rss, per_conn)) => {
            println!(
                "{name:9} idle        {per_conn:>7.1} KiB per connection  (RSS {rss} KiB with {} idle connections)",
                profile.idle_connections
            );
            result.insert("idle_rss_kib".into(), json!(rss));
            result.insert("idle_kib_per_connection".into(), json!(per_conn));
        }
        Err(error) => stats::failed(name, "idle", &error, result),
    }
    // The next workload starts once the server has closed these connections too: their teardown
    // used to run during the serial connects and made their p99 (both systems' p999).
    match proc.settle(fds, Duration::from_secs(30)).await {
        Some(took) => println!("{name:9} idle        closed on the server in {took:.1?}"),
        None => println!("{name:9} idle        connections still open on the server after 30 s"),
    }
}

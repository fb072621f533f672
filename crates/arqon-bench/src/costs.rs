//! What two optional parts of the message path cost, ArqonBus against itself in one run: exporting
//! traces (throughput with `otlp_endpoint` set vs not) and a one-policy Wasm chain (pub→sub latency
//! with `bad_words.wat` as the global chain vs no chain, and the chain's own mean run time from the
//! node's `arqonbus_policy_duration_seconds`).

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use arqon_testkit::OtlpReceiver;
use serde_json::{Value, json};

use crate::client::Target;
use crate::procs::{self, NodeSetup};
use crate::scenarios::{self, Profile};

/// The policy the chain runs: a bad-words scan of every payload (it passes the bench's payloads).
const BAD_WORDS: &str = include_str!("../../arqon-policy/fixtures/bad_words.wat");

/// What every node of this module is started with.
pub(crate) struct Setup<'a> {
    pub(crate) arq: &'a Path,
    pub(crate) dir: &'a Path,
    pub(crate) jwks: &'a Path,
    pub(crate) token: &'a str,
}

impl Setup<'_> {
    fn start(&self, setup: &NodeSetup) -> anyhow::Result<(procs::Proc, Target, String)> {
        let (node, url) = procs::start_node_with(self.arq, self.dir, self.jwks, setup)?;
        let target = Target::Arqon {
            url: url.clone(),
            token: self.token.to_owned(),
        };
        Ok((node, target, url))
    }
}

/// The chosen costs (`traces`, `policy`), each reported or its failure recorded.
pub(crate) async fn run(
    setup: &Setup<'_>,
    profile: Profile,
    chosen: impl Fn(&str) -> bool,
) -> serde_json::Map<String, Value> {
    let mut costs = serde_json::Map::new();
    if chosen("traces") {
        match traces(setup, profile).await {
            Ok(report) => {
                costs.insert("traces".into(), report);
            }
            Err(error) => crate::stats::failed("arqonbus", "traces", &error, &mut costs),
        }
    }
    if chosen("policy") {
        match policy(setup, profile).await {
            Ok(report) => {
                costs.insert("policy".into(), report);
            }
            Err(error) => crate::stats::failed("arqonbus", "policy", &error, &mut costs),
        }
    }
    costs
}

/// Rounds of the traces comparison.
const TRACE_ROUNDS: usize = 3;

/// Throughput (the first fan-out) on a node exporting traces to a real OTLP/HTTP receiver, beside a
/// node that exports none, measured in [`TRACE_ROUNDS`] interleaved rounds (off, on); the ratio is the median round's.
pub(crate) async fn traces(setup: &Setup<'_>, profile: Profile) -> anyhow::Result<Value> {
    let fanout = profile.fanouts.first().copied().unwrap_or(10);
    let receiver = OtlpReceiver::start()?;
    let off = NodeSetup {
        name: "traces-off",
        ..NodeSetup::DEFAULT
    };
    let on = NodeSetup {
        name: "traces-on",
        otlp: Some(receiver.url().to_owned()),
        ..NodeSetup::DEFAULT
    };
    let (_off_node, off_target, _) = setup.start(&off)?;
    let (_on_node, on_target, _) = setup.start(&on)?;
    // Rounds of (off, on): the machine's own drift moves both alike, so each round's ratio is
    // judged and the median round reported.
    let mut offs = Vec::new();
    let mut ons = Vec::new();
    let mut ratios = Vec::new();
    for _ in 0..TRACE_ROUNDS {
        let off = scenarios::throughput(&off_target, profile, fanout).await?.0;
        let on = scenarios::throughput(&on_target, profile, fanout).await?.0;
        offs.push(off);
        ons.push(on);
        ratios.push(on / off.max(f64::MIN_POSITIVE));
    }
    let ratio = crate::stats::median(&ratios);
    #[allow(clippy::cast_precision_loss)] // a handful of rounds
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // The exporter sends in batches: give it a moment to deliver the last ones, then count.
    let spans = receiver
        .collect(Duration::from_secs(3), |_| true, |_| false)
        .len();
    println!(
        "arqonbus  traces      {:>10.0} deliveries/s exported vs {:>10.0} not (means): median round {ratio:.3}×  ({spans} spans received)",
        mean(&ons),
        mean(&offs)
    );
    Ok(json!({
        "fanout": fanout,
        "exporting_per_sec": ons,
        "not_exporting_per_sec": offs,
        "round_ratios": ratios,
        "ratio": ratio,
        "spans_received": spans,
    }))
}

/// Pub→sub latency with a one-policy chain vs none, and the chain's mean run time per publish as the
/// node measured it.
pub(crate) async fn policy(setup: &Setup<'_>, profile: Profile) -> anyhow::Result<Value> {
    let module = setup.dir.join("bad_words.wat");
    std::fs::write(&module, BAD_WORDS)?;
    let none = NodeSetup {
        name: "policy-none",
        ..NodeSetup::DEFAULT
    };
    let one = NodeSetup {
        name: "policy-one",
        policy: Some(module),
        ..NodeSetup::DEFAULT
    };
    let (_none_node, none_target, _) = setup.start(&none)?;
    let (_one_node, one_target, one_url) = setup.start(&one)?;
    let (without, _) = scenarios::pubsub_latency(&none_target, profile).await?;
    let (with, _) = scenarios::pubsub_latency(&one_target, profile).await?;
    let metrics = metrics_text(&one_url)?;
    let sum = metric(&metrics, "arqonbus_policy_duration_seconds_sum")?;
    let count = metric(&metrics, "arqonbus_policy_duration_seconds_count")?;
    let mean_us = sum / count.max(1.0) * 1e6;
    #[allow(clippy::cast_precision_loss)]
    let share = mean_us / (with.p50_us.max(1) as f64);
    println!(
        "arqonbus  policy      p50 {} µs with one policy, {} µs without; the chain ran {mean_us:.1} µs per publish on average: {:.1}% of the p50",
        with.p50_us,
        without.p50_us,
        share * 100.0
    );
    Ok(json!({
        "with": with,
        "without": without,
        "chain_mean_us": mean_us,
        "chain_runs": count,
        "share_of_p50": share,
    }))
}

/// `GET /metrics` of the node whose socket URL is `socket` (`ws://host:port/...`).
fn metrics_text(socket: &str) -> anyhow::Result<String> {
    let authority = socket
        .strip_prefix("ws://")
        .and_then(|rest| rest.split('/').next())
        .context("socket URL is not ws://host:port/…")?;
    let mut stream = std::net::TcpStream::connect(authority)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text)
}

/// The value of an unlabelled metric line `name value`.
fn metric(text: &str, name: &str) -> anyhow::Result<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .with_context(|| format!("{name} missing from /metrics"))
}

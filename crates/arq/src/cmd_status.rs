//! `arq status`: the health of NATS, every node and the Brain, read from `/healthz`, `/readyz`,
//! `/metrics` and NATS monitoring; a human table or `--json`, exit 1 when something is unhealthy.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::bail;
use serde::Serialize;
use serde_json::Value;

use crate::args::{Color, parse_duration};
use crate::cmd_dev::{DEFAULT_DIR, Kind, State};
use crate::http_get::http_get;

/// Arguments of `arq status`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 when every service is healthy, 1 when one is not (or there is nothing to check).\n\nExamples:\n  arq status                                  the stack `arq dev up` started\n  arq status --json | jq .nodes               machine output\n  arq status --url http://10.0.0.5:8443       any node, by its base URL"
)]
pub(crate) struct StatusArgs {
    /// The dev stack directory whose state file lists the services.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// A node's base URL (http://host:port); repeat for several. Replaces the dev state's nodes.
    #[arg(long = "url", value_name = "URL")]
    urls: Vec<String>,
    /// NATS monitoring base URL (http://host:8222). Replaces the dev state's NATS.
    #[arg(long, value_name = "URL")]
    nats_monitor: Option<String>,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Window over which message rates are measured (two samples); 0s reports totals only.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    window: Duration,
    /// Timeout of each HTTP request.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    timeout: Duration,
}

/// Integer samples of a Prometheus text page, summed over labels, by metric name.
fn parse_metrics(text: &str) -> BTreeMap<String, u64> {
    let mut samples = BTreeMap::new();
    for line in text.lines().filter(|line| !line.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series).trim();
        if let Ok(value) = value.trim().parse::<u64>() {
            *samples.entry(name.to_owned()).or_insert(0) += value;
        }
    }
    samples
}

/// Message rates over the sample window, per second.
#[derive(Debug, Serialize)]
struct PerSecond {
    /// Frames read from clients.
    frames_in: f64,
    /// Envelopes handed to the spine.
    published: f64,
    /// Envelopes queued to local sockets.
    delivered: f64,
}

/// What one node reported.
#[derive(Debug, Serialize)]
#[allow(clippy::struct_excessive_bools)] // a report: each flag is one probe's answer
struct NodeStatus {
    name: String,
    url: String,
    /// `/healthz` answered 200.
    alive: bool,
    /// `/readyz` answered 200 (spine connected, not draining).
    ready: bool,
    healthy: bool,
    /// Open WebSocket sessions (`arqonbus_shield_connections_open`).
    connections: Option<u64>,
    /// Spine room subscriptions (`arqonbus_shield_rooms_subscribed`).
    rooms: Option<u64>,
    /// Room memberships of this node's sessions (`arqonbus_presence_members`).
    presence_members: Option<u64>,
    frames_in: Option<u64>,
    published: Option<u64>,
    delivered: Option<u64>,
    dropped_slow: Option<u64>,
    spine_errors: Option<u64>,
    governance_forwarded: Option<u64>,
    governance_forward_failures: Option<u64>,
    per_sec: Option<PerSecond>,
    /// The Brain's series (presence, governance) are on `/metrics`.
    brain_series: bool,
    error: Option<String>,
}

/// What NATS reported.
#[derive(Debug, Serialize)]
struct NatsStatus {
    /// `ok`, `down`, `embedded` (no NATS in this stack) or `unknown` (no monitoring URL).
    status: &'static str,
    healthy: bool,
    url: Option<String>,
    monitor: Option<String>,
    version: Option<String>,
    connections: Option<u64>,
    in_msgs: Option<u64>,
    out_msgs: Option<u64>,
    error: Option<String>,
}

/// The Brain (presence and governance), judged from the nodes.
#[derive(Debug, Serialize)]
struct BrainStatus {
    healthy: bool,
    /// Nodes that are ready and expose the Brain's series.
    nodes_ok: usize,
    nodes: usize,
    presence_members: u64,
    governance_forwarded: u64,
    governance_forward_failures: u64,
}

/// Prometheus, when the stack runs it.
#[derive(Debug, Serialize)]
struct PrometheusStatus {
    url: String,
    healthy: bool,
    error: Option<String>,
}

/// The whole report (`--json`).
#[derive(Debug, Serialize)]
struct Report {
    healthy: bool,
    source: String,
    spine: String,
    nats: NatsStatus,
    nodes: Vec<NodeStatus>,
    brain: BrainStatus,
    prometheus: Option<PrometheusStatus>,
}

/// Where to look: from flags, else from the dev state file.
struct Targets {
    source: String,
    spine: String,
    nats_url: Option<String>,
    nats_monitor: Option<String>,
    nodes: Vec<(String, String)>,
    prometheus: Option<String>,
}

fn targets(args: &StatusArgs) -> anyhow::Result<Targets> {
    let state = State::load(&args.dir)?;
    if state.is_none() && args.urls.is_empty() {
        bail!(
            "nothing to check: no dev stack state in {} (run `arq dev up`, or give --url <node>)",
            State::path(&args.dir).display()
        );
    }
    let mut targets = Targets {
        source: "flags".to_owned(),
        spine: "nats".to_owned(),
        nats_url: None,
        nats_monitor: args.nats_monitor.clone(),
        nodes: args
            .urls
            .iter()
            .map(|url| {
                (
                    url.trim_end_matches('/').to_owned(),
                    url.trim_end_matches('/').to_owned(),
                )
            })
            .collect(),
        prometheus: None,
    };
    if let Some(state) = state.filter(|_| args.urls.is_empty()) {
        targets.source = State::path(&args.dir).display().to_string();
        targets.spine.clone_from(&state.spine);
        for process in &state.processes {
            match process.kind {
                Kind::Nats => {
                    targets.nats_url = Some(process.url.clone());
                    if targets.nats_monitor.is_none() {
                        targets.nats_monitor.clone_from(&process.monitor);
                    }
                }
                Kind::Node => targets
                    .nodes
                    .push((process.name.clone(), process.url.clone())),
                Kind::Prometheus => targets.prometheus = Some(process.url.clone()),
            }
        }
    }
    Ok(targets)
}

/// One look at a node: health, readiness, metric samples.
struct Probe {
    alive: bool,
    ready: bool,
    metrics: Option<BTreeMap<String, u64>>,
    error: Option<String>,
}

fn probe(url: &str, timeout: Duration) -> Probe {
    let get = |path: &str| http_get(&format!("{url}{path}"), timeout);
    let (alive, error) = match get("/healthz") {
        Ok(response) if response.status == 200 => (true, None),
        Ok(response) => (
            false,
            Some(format!("/healthz answered {}", response.status)),
        ),
        Err(error) => (false, Some(format!("{error:#}"))),
    };
    if !alive {
        return Probe {
            alive,
            ready: false,
            metrics: None,
            error,
        };
    }
    let ready = get("/readyz").is_ok_and(|response| response.status == 200);
    let metrics = get("/metrics")
        .ok()
        .filter(|response| response.status == 200)
        .map(|response| parse_metrics(&response.body));
    let error = match (ready, metrics.is_some()) {
        (false, _) => Some("/readyz: not ready (spine unreachable or draining)".to_owned()),
        (true, false) => Some("/metrics unavailable".to_owned()),
        (true, true) => None,
    };
    Probe {
        alive,
        ready,
        metrics,
        error,
    }
}

const CONNECTIONS: &str = "arqonbus_shield_connections_open";
const ROOMS: &str = "arqonbus_shield_rooms_subscribed";
const PRESENCE: &str = "arqonbus_presence_members";
const FRAMES_IN: &str = "arqonbus_shield_frames_in";
const PUBLISHED: &str = "arqonbus_shield_published";
const DELIVERED: &str = "arqonbus_shield_delivered";
const DROPPED: &str = "arqonbus_shield_dropped_slow";
const SPINE_ERRORS: &str = "arqonbus_spine_errors";
const GOV_FORWARDED: &str = "arqonbus_governance_forwarded";
const GOV_FAILURES: &str = "arqonbus_governance_forward_failures";

#[allow(clippy::cast_precision_loss)] // counters far below 2^52 per window
fn rate(
    first: &BTreeMap<String, u64>,
    second: &BTreeMap<String, u64>,
    name: &str,
    window: Duration,
) -> f64 {
    let delta = second
        .get(name)
        .copied()
        .unwrap_or(0)
        .saturating_sub(first.get(name).copied().unwrap_or(0));
    let per_sec = delta as f64 / window.as_secs_f64().max(f64::EPSILON);
    (per_sec * 10.0).round() / 10.0
}

fn node_status(
    name: String,
    url: String,
    first: Probe,
    second: Option<Probe>,
    window: Duration,
) -> NodeStatus {
    let per_sec = match (
        &first.metrics,
        second.as_ref().and_then(|probe| probe.metrics.as_ref()),
    ) {
        (Some(a), Some(b)) => Some(PerSecond {
            frames_in: rate(a, b, FRAMES_IN, window),
            published: rate(a, b, PUBLISHED, window),
            delivered: rate(a, b, DELIVERED, window),
        }),
        _ => None,
    };
    // The latest look decides health; the first only feeds the rates.
    let last = second.unwrap_or(first);
    let metric = |key: &str| last.metrics.as_ref().and_then(|m| m.get(key).copied());
    let brain_series = last.metrics.as_ref().is_some_and(|m| {
        m.contains_key(PRESENCE) && m.keys().any(|key| key.starts_with("arqonbus_governance_"))
    });
    NodeStatus {
        healthy: last.alive && last.ready && last.metrics.is_some(),
        connections: metric(CONNECTIONS),
        rooms: metric(ROOMS),
        presence_members: metric(PRESENCE),
        frames_in: metric(FRAMES_IN),
        published: metric(PUBLISHED),
        delivered: metric(DELIVERED),
        dropped_slow: metric(DROPPED),
        spine_errors: metric(SPINE_ERRORS),
        governance_forwarded: metric(GOV_FORWARDED),
        governance_forward_failures: metric(GOV_FAILURES),
        brain_series,
        per_sec,
        name,
        url,
        alive: last.alive,
        ready: last.ready,
        error: last.error,
    }
}

fn nats_status(targets: &Targets, timeout: Duration) -> NatsStatus {
    let mut status = NatsStatus {
        status: "unknown",
        healthy: true,
        url: targets.nats_url.clone(),
        monitor: targets.nats_monitor.clone(),
        version: None,
        connections: None,
        in_msgs: None,
        out_msgs: None,
        error: None,
    };
    let Some(monitor) = &targets.nats_monitor else {
        if targets.spine == "embedded" {
            status.status = "embedded";
        }
        return status;
    };
    match http_get(&format!("{monitor}/healthz"), timeout) {
        Ok(response) if response.status == 200 => status.status = "ok",
        Ok(response) => {
            status.status = "down";
            status.error = Some(format!(
                "/healthz answered {}: {}",
                response.status,
                response.body.trim()
            ));
        }
        Err(error) => {
            status.status = "down";
            status.error = Some(format!("{error:#}"));
        }
    }
    status.healthy = status.status == "ok";
    if status.healthy
        && let Ok(response) = http_get(&format!("{monitor}/varz"), timeout)
        && let Ok(varz) = serde_json::from_str::<Value>(&response.body)
    {
        status.version = varz["version"].as_str().map(str::to_owned);
        status.connections = varz["connections"].as_u64();
        status.in_msgs = varz["in_msgs"].as_u64();
        status.out_msgs = varz["out_msgs"].as_u64();
    }
    status
}

fn report(args: &StatusArgs) -> anyhow::Result<Report> {
    let targets = targets(args)?;
    let first: Vec<Probe> = targets
        .nodes
        .iter()
        .map(|(_, url)| probe(url, args.timeout))
        .collect();
    let second: Vec<Option<Probe>> = if args.window.is_zero() {
        targets.nodes.iter().map(|_| None).collect()
    } else {
        // A measurement window for the rates, not a synchronisation.
        std::thread::sleep(args.window);
        targets
            .nodes
            .iter()
            .map(|(_, url)| Some(probe(url, args.timeout)))
            .collect()
    };
    let nodes: Vec<NodeStatus> = targets
        .nodes
        .iter()
        .zip(first.into_iter().zip(second))
        .map(|((name, url), (first, second))| {
            node_status(name.clone(), url.clone(), first, second, args.window)
        })
        .collect();
    let nats = nats_status(&targets, args.timeout);
    let reachable: Vec<&NodeStatus> = nodes.iter().filter(|node| node.alive).collect();
    let nodes_ok = reachable
        .iter()
        .filter(|node| node.ready && node.brain_series)
        .count();
    let brain = BrainStatus {
        healthy: !reachable.is_empty() && nodes_ok == reachable.len(),
        nodes_ok,
        nodes: nodes.len(),
        presence_members: nodes.iter().filter_map(|node| node.presence_members).sum(),
        governance_forwarded: nodes
            .iter()
            .filter_map(|node| node.governance_forwarded)
            .sum(),
        governance_forward_failures: nodes
            .iter()
            .filter_map(|node| node.governance_forward_failures)
            .sum(),
    };
    let prometheus = targets.prometheus.as_ref().map(|url| {
        match http_get(&format!("{url}/-/ready"), args.timeout) {
            Ok(response) if response.status == 200 => PrometheusStatus {
                url: url.clone(),
                healthy: true,
                error: None,
            },
            Ok(response) => PrometheusStatus {
                url: url.clone(),
                healthy: false,
                error: Some(format!("/-/ready answered {}", response.status)),
            },
            Err(error) => PrometheusStatus {
                url: url.clone(),
                healthy: false,
                error: Some(format!("{error:#}")),
            },
        }
    });
    let healthy = nats.healthy
        && !nodes.is_empty()
        && nodes.iter().all(|node| node.healthy)
        && brain.healthy
        && prometheus.as_ref().is_none_or(|p| p.healthy);
    Ok(Report {
        healthy,
        source: targets.source,
        spine: targets.spine,
        nats,
        nodes,
        brain,
        prometheus,
    })
}

fn or_dash(value: Option<u64>) -> String {
    value.map_or_else(|| "-".to_owned(), |value| value.to_string())
}

/// The table rows: service, status word, healthy, address, detail.
fn rows(report: &Report) -> Vec<(String, String, bool, String, String)> {
    let mut rows = Vec::new();
    let nats = &report.nats;
    let mut detail = nats.error.clone().unwrap_or_default();
    if nats.healthy && nats.status == "ok" {
        detail = format!(
            "{} connections, {} msgs in, {} msgs out{}",
            or_dash(nats.connections),
            or_dash(nats.in_msgs),
            or_dash(nats.out_msgs),
            nats.version
                .as_ref()
                .map(|v| format!(", v{v}"))
                .unwrap_or_default()
        );
    } else if nats.status == "embedded" {
        "in-process spine (no nats-server)".clone_into(&mut detail);
    }
    rows.push((
        "nats".to_owned(),
        nats.status.to_owned(),
        nats.healthy,
        nats.url
            .clone()
            .or_else(|| nats.monitor.clone())
            .unwrap_or_else(|| "-".to_owned()),
        detail,
    ));
    for node in &report.nodes {
        let word = match (node.alive, node.ready, node.healthy) {
            (_, _, true) => "ok",
            (false, _, _) => "down",
            (true, false, _) => "not ready",
            (true, true, false) => "degraded",
        };
        let mut detail = format!(
            "{} connections, {} rooms, {} presence",
            or_dash(node.connections),
            or_dash(node.rooms),
            or_dash(node.presence_members)
        );
        if let Some(rates) = &node.per_sec {
            let _ = write!(
                detail,
                ", {} frames in/s, {} delivered/s",
                rates.frames_in, rates.delivered
            );
        }
        if let Some(error) = &node.error {
            detail.clone_from(error);
        }
        rows.push((
            node.name.clone(),
            word.to_owned(),
            node.healthy,
            node.url.clone(),
            detail,
        ));
    }
    let brain = &report.brain;
    rows.push((
        "brain".to_owned(),
        if brain.healthy { "ok" } else { "degraded" }.to_owned(),
        brain.healthy,
        "(in every node)".to_owned(),
        format!(
            "{}/{} nodes report presence and governance; {} presence members, {} governance forwards ({} failed)",
            brain.nodes_ok,
            brain.nodes,
            brain.presence_members,
            brain.governance_forwarded,
            brain.governance_forward_failures
        ),
    ));
    if let Some(prometheus) = &report.prometheus {
        rows.push((
            "prometheus".to_owned(),
            if prometheus.healthy { "ok" } else { "down" }.to_owned(),
            prometheus.healthy,
            prometheus.url.clone(),
            prometheus.error.clone().unwrap_or_default(),
        ));
    }
    rows
}

fn table(report: &Report, colour: bool) -> String {
    let rows = rows(report);
    let width = |pick: fn(&(String, String, bool, String, String)) -> usize, title: &str| {
        rows.iter().map(pick).max().unwrap_or(0).max(title.len())
    };
    let service = width(|row| row.0.len(), "SERVICE");
    let status = width(|row| row.1.len(), "STATUS");
    let address = width(|row| row.3.len(), "ADDRESS");
    let mut out = format!(
        "{:service$}  {:status$}  {:address$}  DETAIL\n",
        "SERVICE", "STATUS", "ADDRESS"
    );
    for (name, word, healthy, addr, detail) in &rows {
        let padded = format!("{word:status$}");
        let shown = match (colour, healthy) {
            (false, _) => padded,
            (true, true) => format!("\x1b[32m{padded}\x1b[0m"),
            (true, false) => format!("\x1b[31m{padded}\x1b[0m"),
        };
        let _ = writeln!(out, "{name:service$}  {shown}  {addr:address$}  {detail}");
    }
    let _ = writeln!(
        out,
        "{}",
        if report.healthy {
            "healthy"
        } else {
            "UNHEALTHY"
        }
    );
    out
}

pub(crate) fn run(args: &StatusArgs, color: Color) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let report = report(args)?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        let paint = match color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        };
        write!(out, "{}", table(&report, paint))?;
        if !args.window.is_zero() {
            writeln!(
                out,
                "(rates over {:.1}s; checked in {:.1}s)",
                args.window.as_secs_f64(),
                started.elapsed().as_secs_f64()
            )?;
        }
    }
    out.flush()?;
    Ok(if report.healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels_and_floats_skipped() {
        let text = "# HELP x y\n# TYPE x counter\narqonbus_shield_connections_open 2\narqonbus_spine_errors{op=\"publish\"} 1\narqonbus_spine_errors{op=\"subscribe\"} 2\nh_sum 0.25\n";
        let metrics = parse_metrics(text);
        assert_eq!(metrics.get(CONNECTIONS), Some(&2));
        assert_eq!(metrics.get(SPINE_ERRORS), Some(&3));
        assert_eq!(metrics.get("h_sum"), None);
    }

    #[test]
    fn rates_are_per_second_over_the_window() {
        let a = BTreeMap::from([(FRAMES_IN.to_owned(), 10)]);
        let b = BTreeMap::from([(FRAMES_IN.to_owned(), 30)]);
        assert!((rate(&a, &b, FRAMES_IN, Duration::from_millis(500)) - 40.0).abs() < f64::EPSILON);
        // A counter reset (node restarted) is not a negative rate.
        assert!(rate(&b, &a, FRAMES_IN, Duration::from_secs(1)).abs() < f64::EPSILON);
    }
}

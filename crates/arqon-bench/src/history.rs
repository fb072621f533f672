//! `arqon-bench --history`: what history costs and what recovery takes (`specs/history.md`).
//!
//! Four nodes in one run — embedded and NATS (`JetStream`) spines, history on and off — each
//! measured with the same publish→deliver and throughput workloads; then, on the nodes with
//! history, the time a client cut off while 10,000 messages were published takes to get them all
//! back once it reconnects (from its reconnect to the last recovered message).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arqon_client::{BusClient, Event};
use arqon_testkit::DelayProxy;
use serde_json::{Value, json};

use crate::client::Target;
use crate::procs::{self, NodeSetup};
use crate::scenarios::{self, Profile};

/// Messages missed in the recovery measurement.
const MISSED: usize = 10_000;

/// Runs the history comparison; returns its JSON report.
pub(crate) async fn run(
    arq: &Path,
    nats_server: &Path,
    token: &str,
    dir: &Path,
    jwks: &Path,
    profile: Profile,
) -> anyhow::Result<Value> {
    let (_nats, nats_url) = procs::start_nats_js(nats_server, dir)?;
    let setups = [
        ("embedded", None, true),
        ("embedded", None, false),
        ("nats", Some(nats_url.clone()), true),
        ("nats", Some(nats_url), false),
    ];
    let mut report = serde_json::Map::new();
    for (spine, nats, history) in setups {
        let name = format!("{spine}-history-{}", if history { "on" } else { "off" });
        let setup = NodeSetup {
            name: if history { "hist-on" } else { "hist-off" },
            nats,
            history,
            ..NodeSetup::DEFAULT
        };
        let (node, url) = procs::start_node_with(arq, dir, jwks, &setup)?;
        let target = Target::Arqon {
            url: url.clone(),
            token: token.to_owned(),
        };
        let mut result = serde_json::Map::new();
        let (latency, delivered) = scenarios::pubsub_latency(&target, profile).await?;
        crate::stats::print_latency(
            &name,
            "pub→sub",
            &latency,
            &format!("{:.1}% delivered", delivered * 100.0),
        );
        result.insert("pubsub".into(), json!(latency));
        let (throughput, _, _) =
            scenarios::throughput(&target, profile, profile.fanouts[0]).await?;
        println!("{name:22} throughput {throughput:>10.0} deliveries/s");
        result.insert("throughput_per_sec".into(), json!(throughput));
        if history {
            let (took, since_restore) = recovery(&url, token).await?;
            println!(
                "{name:22} recovery   {MISSED} missed messages in {:.1} ms after the reconnect ({:.1} ms after the network came back)",
                took.as_secs_f64() * 1e3,
                since_restore.as_secs_f64() * 1e3
            );
            result.insert("recovery_ms".into(), json!(took.as_secs_f64() * 1e3));
            result.insert(
                "recovery_from_restore_ms".into(),
                json!(since_restore.as_secs_f64() * 1e3),
            );
        }
        drop(node);
        report.insert(name, Value::Object(result));
    }
    Ok(Value::Object(report))
}

/// Cuts a subscriber off (a TCP proxy), publishes [`MISSED`] messages, lets it back in; returns
/// the time from its reconnect to the last recovered message, and from the restore.
async fn recovery(url: &str, token: &str) -> anyhow::Result<(Duration, Duration)> {
    let node: std::net::SocketAddr = url
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .context("node URL")?
        .parse()?;
    let proxy = DelayProxy::start(node, Duration::ZERO).await?;
    let proxied = format!("ws://{}/v1/socket", proxy.addr());
    let mut sub = BusClient::connect(&proxied, token).await?;
    sub.join("recover").await?;
    let publisher = BusClient::connect(url, token).await?;
    publisher.join("recover").await?;
    proxy.cut();
    wait(&mut sub, |e| matches!(e, Event::Disconnected)).await?;
    for i in 0..MISSED {
        publisher
            .publish("recover", format!("m{i}").into_bytes(), "text/plain")
            .await?;
    }
    let restored = Instant::now();
    proxy.restore();
    wait(&mut sub, |e| matches!(e, Event::Connected { .. })).await?;
    let reconnected = Instant::now();
    let mut got = 0;
    let mut recovered = None;
    while got < MISSED {
        match next(&mut sub).await? {
            Event::Recovered {
                recovered: r,
                count,
                ..
            } => recovered = Some((r, count)),
            Event::Message { room, .. } if room == "recover" => got += 1,
            _ => {}
        }
    }
    let done = Instant::now();
    match recovered {
        Some((true, count)) if count as usize == MISSED => {}
        other => bail!("recovery answered {other:?}, not all {MISSED}"),
    }
    Ok((done - reconnected, done - restored))
}

async fn next(client: &mut BusClient) -> anyhow::Result<Event> {
    tokio::time::timeout(Duration::from_mins(1), client.next_event())
        .await
        .context("no event within a minute")?
        .map_err(Into::into)
}

async fn wait(client: &mut BusClient, pick: impl Fn(&Event) -> bool) -> anyhow::Result<()> {
    loop {
        if pick(&next(client).await?) {
            return Ok(());
        }
    }
}

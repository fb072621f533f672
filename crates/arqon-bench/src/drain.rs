//! `arqon-bench --drain N`: how long a node takes to drain N connected clients on SIGTERM
//! (issue 16's "drain time for 5,000 clients"): each client is an `arqon-client` that leaves on
//! `Drain`, as real clients do; the figures are SIGTERM → process exit and SIGTERM → each client's
//! disconnect (p50/p99/max).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use arqon_client::{BusClient, Event};
use serde_json::{Value, json};

use crate::procs::{self, NodeSetup};
use crate::stats::Samples;

/// Rooms the clients are spread over.
const ROOMS: usize = 50;

/// Connects `clients` clients to a fresh node, sends it SIGTERM and times the drain.
pub(crate) async fn run(
    arq: &Path,
    dir: &Path,
    jwks: &Path,
    token: &str,
    clients: usize,
) -> anyhow::Result<Value> {
    let setup = NodeSetup {
        name: "drain",
        ..NodeSetup::DEFAULT
    };
    let (mut node, url) = procs::start_node_with(arq, dir, jwks, &setup)?;
    let connected = Instant::now();
    let mut all = Vec::with_capacity(clients);
    for i in 0..clients {
        let client = BusClient::connect(&url, token).await.context("connect")?;
        // Fifty rooms: presence stays at about a hundred members a room for 5,000 clients.
        client
            .join(&format!("drain-{}", i % ROOMS))
            .await
            .context("join")?;
        all.push(client);
    }
    println!(
        "drain     {clients} clients connected and joined in {:.1} s",
        connected.elapsed().as_secs_f64()
    );
    let terminated = Instant::now();
    let waiting: Vec<_> = all
        .into_iter()
        .map(|mut client| {
            tokio::spawn(async move {
                loop {
                    match client.next_event().await {
                        Ok(Event::Disconnected) | Err(_) => return terminated.elapsed(),
                        Ok(_) => {}
                    }
                }
            })
        })
        .collect();
    let exited = tokio::task::spawn_blocking(move || node.terminate()).await??;
    let mut samples = Samples::default();
    for waited in waiting {
        let took = tokio::time::timeout(Duration::from_mins(1), waited)
            .await
            .context("a client never saw the drain")??;
        samples.push(took);
    }
    let summary = samples.summary();
    println!(
        "drain     SIGTERM → exit {:.0} ms; → each client gone p50 {} µs p99 {} µs max {} µs ({} clients)",
        exited.as_secs_f64() * 1e3,
        summary.p50_us,
        summary.p99_us,
        summary.max_us,
        summary.count
    );
    Ok(json!({
        "clients": clients,
        "exit_ms": exited.as_secs_f64() * 1e3,
        "client_gone": summary,
    }))
}

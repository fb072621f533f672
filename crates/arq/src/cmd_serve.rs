//! `arq serve`: start a node from a config file (or dev defaults) and drain it on SIGTERM/Ctrl-C.

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use arqon_config::{Config, JwksSource};
use arqon_shield::Node;

use crate::args::Color;

/// Arguments of `arq serve`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// The arqon.toml to run with.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Dev mode: without --config, a single node on 127.0.0.1:8080 with the embedded spine and dev
    /// keys; with --config, forces node.dev = true.
    #[arg(long)]
    dev: bool,
    /// Listen on this address instead of node.listen (port 0 picks a free port).
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
}

fn load(args: &ServeArgs) -> anyhow::Result<Config> {
    let mut config = match (&args.config, args.dev) {
        (Some(path), _) => Config::load(path)?,
        (None, true) => Config::dev_default(),
        (None, false) => bail!("give --config <file>, or --dev for a local dev node"),
    };
    if args.dev {
        config.node.dev = true;
    }
    if let Some(listen) = args.listen {
        config.node.listen = listen;
    }
    config.check()?;
    Ok(config)
}

/// Installs logs and traces from `[telemetry]` (`specs/observability.md`): JSON or pretty logs on
/// stderr, spans exported over OTLP/HTTP when `otlp_endpoint` is set.
fn init_telemetry(config: &Config, color: Color) -> anyhow::Result<arqon_telemetry::Telemetry> {
    let ansi = match color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    Ok(arqon_telemetry::init(&config.telemetry, "arqonbus", ansi)?)
}

/// Raises the soft open-file limit to the hard one, as Go's runtime does for nats-server: every
/// connection is a descriptor, and the usual soft default (1024) is far below `limits.max_connections`.
/// Warns when even the hard limit cannot hold that many connections.
fn raise_fd_limit(config: &Config) {
    // Descriptors besides client sockets: the listener, spine connections, files, the runtime.
    const SPARE: u64 = 256;
    let wanted = u64::from(config.limits.max_connections) + SPARE;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) if soft < wanted => tracing::warn!(
            open_files = soft,
            max_connections = config.limits.max_connections,
            "the open-file limit is below limits.max_connections; raise the hard limit (LimitNOFILE)"
        ),
        Ok(soft) => tracing::debug!(open_files = soft, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
}

pub(crate) fn run(args: &ServeArgs, color: Color) -> anyhow::Result<ExitCode> {
    let config = load(args)?;
    let telemetry = init_telemetry(&config, color)?;
    raise_fd_limit(&config);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let token_hint = token_hint(args, &config);
    let served = runtime.block_on(serve(config, token_hint));
    // Export the spans still batched before the process exits.
    telemetry.shutdown();
    served
}

/// The `arq auth gen` command that mints a token this node accepts (dev keys only).
fn token_hint(args: &ServeArgs, config: &Config) -> Option<String> {
    let JwksSource::DevKeys(dir) = config.jwks_source() else {
        return None;
    };
    let source = match &args.config {
        Some(file) => format!("--config {}", file.display()),
        None => format!("--keys {}", dir.display()),
    };
    Some(format!("arq auth gen {source} --tenant dev --sub alice"))
}

async fn serve(config: Config, token_hint: Option<String>) -> anyhow::Result<ExitCode> {
    let id = config.node.id.clone();
    let node = Node::start(config).await.context("cannot start the node")?;
    let addr = node.local_addr();
    let scheme = if node.socket_url().starts_with("wss") {
        "https"
    } else {
        "http"
    };
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "arqon node {id} listening")?;
        writeln!(out, "  socket:  {}", node.socket_url())?;
        writeln!(out, "  health:  {scheme}://{addr}/healthz")?;
        writeln!(out, "  metrics: {scheme}://{addr}/metrics")?;
        if let Some(command) = token_hint {
            writeln!(out, "  token:   {command}")?;
        }
        writeln!(out, "stop with Ctrl-C or SIGTERM (graceful drain)")?;
        out.flush()?;
    }
    wait_for_stop().await?;
    eprintln!("draining…");
    node.shutdown().await;
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
}

#[cfg(unix)]
async fn wait_for_stop() -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("cannot listen for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("cannot listen for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn wait_for_stop() -> anyhow::Result<()> {
    tokio::signal::ctrl_c()
        .await
        .context("cannot listen for Ctrl-C")
}

//! The systems under test as real processes: an `arq serve` node and a nats-server WebSocket listener.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arqon_testkit::free_port;

/// A child process killed on drop.
pub(crate) struct Proc {
    child: Child,
}

impl Proc {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size in KiB, from /proc/<pid>/status.
    pub(crate) fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("no VmRSS in /proc status")
    }
}

impl Proc {
    /// How many file descriptors the process holds open, from /proc/<pid>/fd.
    pub(crate) fn open_fds(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read_dir(format!("/proc/{}/fd", self.pid()))?.count())
    }

    /// Waits (at most `limit`) until the process holds no more than `fds` descriptors: the
    /// connections a workload closed are gone on the server's side too, so their teardown does not
    /// run during the next workload. The same wait for both systems; /proc has no event for it, so
    /// it is looked at every 20 ms. Returns how long it took, or `None` when the limit passed.
    pub(crate) async fn settle(&self, fds: usize, limit: Duration) -> Option<Duration> {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        while started.elapsed() < limit {
            tick.tick().await;
            if self.open_fds().is_ok_and(|open| open <= fds) {
                return Some(started.elapsed());
            }
        }
        None
    }
}

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat` (`self` for this one).
pub(crate) fn cpu_time(pid: &str) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .context("no ) in stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks =
        |i: usize| -> anyhow::Result<u64> { Ok(fields.get(i).context("short stat")?.parse()?) };
    // utime and stime are fields 14 and 15 (1-based), 11 and 12 after the ')'.
    let total = ticks(11)? + ticks(12)?;
    // Linux reports them in USER_HZ, 100 per second on every platform this runs on.
    Ok(Duration::from_millis(total * 10))
}

impl Proc {
    /// CPU time the process has used so far.
    pub(crate) fn cpu(&self) -> anyhow::Result<Duration> {
        cpu_time(&self.pid().to_string())
    }

    /// Sends SIGTERM and waits for the process to exit; returns how long that took.
    pub(crate) fn terminate(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("cannot run kill")?;
        if !status.success() {
            bail!("kill -TERM {} failed: {status}", self.pid());
        }
        self.child.wait().context("waiting for the node to exit")?;
        Ok(started.elapsed())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The spine and history settings of a benchmarked node.
#[derive(Clone, Debug)]
pub(crate) struct NodeSetup {
    /// A name for the config file.
    pub(crate) name: &'static str,
    /// NATS URL, or `None` for the embedded spine.
    pub(crate) nats: Option<String>,
    /// `[history] enabled`.
    pub(crate) history: bool,
    /// `[telemetry] otlp_endpoint`: traces exported there.
    pub(crate) otlp: Option<String>,
    /// `[policy] global`: one module run on every publish.
    pub(crate) policy: Option<PathBuf>,
}

impl NodeSetup {
    /// The product's default: the embedded spine with history on.
    pub(crate) const DEFAULT: Self = Self {
        name: "bench",
        nats: None,
        history: true,
        otlp: None,
        policy: None,
    };

    fn toml(&self) -> String {
        let spine = match &self.nats {
            Some(url) => format!("kind = \"nats\"\nnats_urls = [\"{url}\"]"),
            None => "kind = \"embedded\"".to_owned(),
        };
        let policy = self.policy.as_ref().map_or_else(String::new, |path| {
            format!("[policy]\nglobal = [\"{}\"]\n\n", path.display())
        });
        format!(
            "[spine]\n{spine}\n\n[history]\nenabled = {}\nmax_messages = 20000\nrecovery_limit = 20000\n\n{policy}",
            self.history
        )
    }

    /// The `[telemetry]` lines beyond the log settings.
    fn telemetry(&self) -> String {
        self.otlp
            .as_ref()
            .map_or_else(String::new, |url| format!("otlp_endpoint = \"{url}\"\n"))
    }
}

/// Starts `arq serve` with limits opened wide for load, and returns it with its socket URL.
pub(crate) fn start_node(arq: &Path, dir: &Path, jwks: &Path) -> anyhow::Result<(Proc, String)> {
    start_node_with(arq, dir, jwks, &NodeSetup::DEFAULT)
}

/// [`start_node`] with a spine and history setting.
pub(crate) fn start_node_with(
    arq: &Path,
    dir: &Path,
    jwks: &Path,
    setup: &NodeSetup,
) -> anyhow::Result<(Proc, String)> {
    let config = dir.join(format!("{}-node.toml", setup.name));
    std::fs::write(
        &config,
        format!(
            r#"[node]
id = "bench"
listen = "127.0.0.1:0"
dev = true

[auth]
jwks_file = "{jwks}"
issuer = "{iss}"
audience = "{aud}"

{spine}
[limits]
max_connections = 19000
accept = {{ per_sec = 100000, burst = 100000 }}
outbound_queue_depth = 4096
slow_consumer_threshold = 100000

[limits.tenant_defaults]
max_connections = 19000
max_connections_per_user = 19000
connection_publish = {{ per_sec = 1000000, burst = 1000000 }}
tenant_publish = {{ per_sec = 1000000, burst = 1000000 }}

[session]
heartbeat_interval = "30s"
idle_timeout = "300s"

[telemetry]
log_format = "json"
log_level = "warn"
{telemetry}"#,
            jwks = jwks.display(),
            iss = arqon_auth::DEV_ISSUER,
            aud = arqon_auth::DEV_AUDIENCE,
            spine = setup.toml(),
            telemetry = setup.telemetry(),
        ),
    )?;
    let mut child = Command::new(arq)
        .args(["--color", "never", "serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("cannot run {}", arq.display()))?;
    let stdout = child.stdout.take().context("no stdout")?;
    let proc = Proc { child };
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next() {
        let line = line?;
        if let Some(url) = line.trim().strip_prefix("socket:") {
            // Keep reading, so the node never writes into a closed pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok((proc, url.trim().to_owned()));
        }
    }
    bail!("arq serve exited before printing its socket URL")
}

/// Starts nats-server with only a WebSocket listener of interest, as in shared/peers/nats-ws.conf.
pub(crate) fn start_nats_ws(nats_server: &Path, dir: &Path) -> anyhow::Result<(Proc, String)> {
    let ws_port = free_port()?;
    let config: PathBuf = dir.join("nats-ws.conf");
    std::fs::write(
        &config,
        format!(
            "host: 127.0.0.1\nport: -1\nmax_connections: 1000000\nmax_payload: 1MB\nmax_pending: 64MB\n\
             write_deadline: \"10s\"\nwebsocket {{\n  listen: \"127.0.0.1:{ws_port}\"\n  no_tls: true\n  compression: false\n}}\n"
        ),
    )?;
    let child = Command::new(nats_server)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", nats_server.display()))?;
    let proc = Proc { child };
    wait_for_port(ws_port)?;
    Ok((proc, format!("ws://127.0.0.1:{ws_port}")))
}

/// Starts a plain nats-server with `JetStream` (the history store) on a free port.
pub(crate) fn start_nats_js(nats_server: &Path, dir: &Path) -> anyhow::Result<(Proc, String)> {
    let port = free_port()?;
    let store = dir.join("jetstream");
    let child = Command::new(nats_server)
        .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
        .arg(&store)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot run {}", nats_server.display()))?;
    let proc = Proc { child };
    wait_for_port(port)?;
    Ok((proc, format!("nats://127.0.0.1:{port}")))
}

/// Waits (bounded) until something accepts TCP connections on `port`.
fn wait_for_port(port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("nothing listens on {port}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

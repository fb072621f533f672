//! `arq dev up|down|logs`: a local stack (nats-server or the embedded spine, N nodes, Prometheus)
//! run in the background, recorded in a state file, and stopped without leaving stray processes.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use arqon_config::{Config, SpineKind};
use serde::{Deserialize, Serialize};

use crate::args::parse_duration;
use crate::http_get::http_get;

/// Where `arq dev` keeps its state, configs and logs by default.
pub(crate) const DEFAULT_DIR: &str = ".arqon/dev";
const STATE_FILE: &str = "state.json";
const STATE_VERSION: u32 = 1;
/// Interval between two readiness or liveness looks (a bounded probe, not a synchronisation).
const POLL: Duration = Duration::from_millis(25);
/// How long `dev down` gives a process to exit after SIGTERM, and after SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(15);
const KILL_GRACE: Duration = Duration::from_secs(5);
/// Each HTTP probe while waiting for readiness.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Standard ports, used when free.
const NATS_PORT: u16 = 4222;
const NATS_MONITOR_PORT: u16 = 8222;
const NODE_PORT: u16 = 8080;
const PROMETHEUS_PORT: u16 = 9090;

/// `arq dev`: the local stack.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DevCommand {
    /// Start NATS (or the embedded spine), N nodes and Prometheus in the background; print URLs and a token.
    #[command(
        after_help = "Examples:\n  arq dev up                      nats-server (if on PATH), one node, Prometheus (if installed)\n  arq dev up --nodes 3            three nodes sharing one nats-server\n  arq dev up --free-ports         free ports instead of 4222/8222/8080/9090\n  arq dev up --docker             docker compose -f deploy/docker-compose.yml up -d"
    )]
    Up(UpArgs),
    /// Stop every process `dev up` started (SIGTERM, then SIGKILL after 15s).
    Down(DirArgs),
    /// Print the stack's log files (--follow keeps printing until `dev down`).
    Logs(LogsArgs),
}

/// Arguments of `arq dev up`.
#[derive(Debug, clap::Args)]
pub(crate) struct UpArgs {
    /// Number of ArqonBus nodes (more than one needs nats-server).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=16))]
    nodes: u16,
    /// Directory for the state file, node configs and logs.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Dev keys directory (made on first use); `arq auth gen` uses the same default.
    #[arg(long, value_name = "DIR", default_value = arqon_auth::DEFAULT_DEV_KEYS_DIR)]
    keys: PathBuf,
    /// Pick free ports for every service instead of the standard ones.
    #[arg(long)]
    free_ports: bool,
    /// NATS client port [default: 4222 if free]; 0 picks a free port.
    #[arg(long, value_name = "PORT")]
    nats_port: Option<u16>,
    /// First node's port, the others follow [default: 8080 if free]; 0 picks free ports.
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// Prometheus port [default: 9090 if free]; 0 picks a free port.
    #[arg(long, value_name = "PORT")]
    prometheus_port: Option<u16>,
    /// Do not start Prometheus even when it is installed.
    #[arg(long)]
    no_prometheus: bool,
    /// How long each service may take to become ready.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    timeout: Duration,
    /// Run the Docker Compose stack instead (needs a Docker engine).
    #[arg(long)]
    docker: bool,
    /// The Compose file for --docker.
    #[arg(long, value_name = "FILE", default_value = "deploy/docker-compose.yml")]
    compose_file: PathBuf,
}

/// `--dir` alone.
#[derive(Debug, clap::Args)]
pub(crate) struct DirArgs {
    /// The dev stack directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
}

/// Arguments of `arq dev logs`.
#[derive(Debug, clap::Args)]
pub(crate) struct LogsArgs {
    /// The dev stack directory.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DIR)]
    dir: PathBuf,
    /// Keep printing new lines (prefixed with the service) until Ctrl-C or `arq dev down`.
    #[arg(long, short)]
    follow: bool,
    /// Only these services (nats, dev-1, …, prometheus).
    services: Vec<String>,
}

/// What a recorded process is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    Nats,
    Node,
    Prometheus,
}

/// One process `dev up` started.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Process {
    pub(crate) name: String,
    pub(crate) kind: Kind,
    pub(crate) pid: u32,
    /// `nats://…` for NATS, the HTTP base URL otherwise.
    pub(crate) url: String,
    /// NATS monitoring base URL.
    pub(crate) monitor: Option<String>,
    /// A node's WebSocket URL.
    pub(crate) socket: Option<String>,
    pub(crate) log: PathBuf,
}

impl Process {
    /// A process record before it starts (its PID is set by `Starting::launch`).
    fn new(name: &str, kind: Kind, url: String, log: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            pid: 0,
            url,
            monitor: None,
            socket: None,
            log,
        }
    }
}

/// `<dir>/state.json`: what `dev up` started, for `dev down`, `dev logs` and `status`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct State {
    pub(crate) version: u32,
    /// The absolute dev dir; every recorded process names it on its command line.
    pub(crate) dir: PathBuf,
    /// `nats`, `embedded` or `docker`.
    pub(crate) spine: String,
    pub(crate) processes: Vec<Process>,
    /// The Compose file of a `--docker` stack.
    pub(crate) compose_file: Option<PathBuf>,
}

impl State {
    pub(crate) fn path(dir: &Path) -> PathBuf {
        dir.join(STATE_FILE)
    }

    /// The state in `dir`, or `None` when no stack was started there.
    pub(crate) fn load(dir: &Path) -> anyhow::Result<Option<Self>> {
        let path = Self::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error).with_context(|| format!("read {}", path.display())),
        };
        let state: Self = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a dev stack state file", path.display()))?;
        if state.version != STATE_VERSION {
            bail!(
                "{} has version {}, this arq reads {STATE_VERSION}",
                path.display(),
                state.version
            );
        }
        Ok(Some(state))
    }

    /// Writes the state atomically (temp file, then rename).
    fn save(&self) -> anyhow::Result<()> {
        let path = Self::path(&self.dir);
        let temp = self.dir.join(format!("{STATE_FILE}.tmp"));
        std::fs::write(&temp, serde_json::to_string_pretty(self)?)
            .with_context(|| format!("write {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("write {}", path.display()))
    }

    fn remove(&self) -> anyhow::Result<()> {
        match std::fs::remove_file(Self::path(&self.dir)) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                Err(error).context("remove the state file")
            }
            _ => Ok(()),
        }
    }
}

pub(crate) fn run(command: &DevCommand) -> anyhow::Result<ExitCode> {
    match command {
        DevCommand::Up(args) if args.docker => docker_up(args),
        DevCommand::Up(args) => up(args),
        DevCommand::Down(args) => down(&args.dir),
        DevCommand::Logs(args) => logs(args),
    }
}

/// `name` in a directory of `PATH`, if it is an executable file there.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let file = if cfg!(windows) {
        format!("{name}.exe")
    } else {
        name.to_owned()
    };
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(&file))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

/// Chooses ports: explicit ones as given, standard ones when free, otherwise free ones.
struct Ports {
    all_free: bool,
    taken: HashSet<u16>,
}

impl Ports {
    fn bindable(port: u16) -> bool {
        TcpListener::bind(("127.0.0.1", port)).is_ok()
    }

    fn free(&mut self) -> anyhow::Result<u16> {
        for _ in 0..32 {
            let port = TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port();
            if self.taken.insert(port) {
                return Ok(port);
            }
        }
        bail!("no free port found on 127.0.0.1")
    }

    fn pick(&mut self, what: &str, explicit: Option<u16>, standard: u16) -> anyhow::Result<u16> {
        match explicit {
            Some(0) => self.free(),
            Some(port) if Self::bindable(port) && self.taken.insert(port) => Ok(port),
            Some(port) => bail!("{what}: port {port} is taken"),
            None if self.all_free => self.free(),
            None if !self.taken.contains(&standard) && Self::bindable(standard) => {
                self.taken.insert(standard);
                Ok(standard)
            }
            None => {
                let port = self.free()?;
                eprintln!("note: {what}: port {standard} is taken, using {port}");
                Ok(port)
            }
        }
    }
}

/// Starts `program` detached from the terminal (own process group), output to `log`.
fn spawn(program: &Path, args: &[String], log: &Path) -> anyhow::Result<Child> {
    let out = File::create(log).with_context(|| format!("create {}", log.display()))?;
    let err = out.try_clone()?;
    let mut command = Command::new(program);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        // Ctrl-C in the terminal that ran `dev up` must not reach the stack.
        command.process_group(0);
    }
    command
        .spawn()
        .with_context(|| format!("start {}", program.display()))
}

/// The last lines of a log file, for error messages.
fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Waits until `url` answers 200, failing at once when the process exits; returns the time taken.
fn wait_ready(
    name: &str,
    child: &mut Child,
    url: &str,
    log: &Path,
    timeout: Duration,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "{name} exited ({status}) before it was ready; last lines of {}:\n{}",
                log.display(),
                log_tail(log, 20)
            );
        }
        if http_get(url, PROBE_TIMEOUT).is_ok_and(|response| response.status == 200) {
            return Ok(started.elapsed());
        }
        if started.elapsed() > timeout {
            bail!(
                "{name} was not ready within {}s ({url}); last lines of {}:\n{}",
                timeout.as_secs(),
                log.display(),
                log_tail(log, 20)
            );
        }
        std::thread::sleep(POLL);
    }
}

/// Mints the ready token with `arq auth gen` (the same executable), making the dev keys on first use.
fn mint_token(exe: &Path, keys: &Path) -> anyhow::Result<String> {
    let output = Command::new(exe)
        .args(["auth", "gen", "--tenant", "dev", "--sub", "dev-user"])
        .args(["--role", "user", "--ttl", "1h", "--keys"])
        .arg(keys)
        .stdin(Stdio::null())
        .output()
        .context("run `arq auth gen`")?;
    let note = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!("`arq auth gen` failed: {}", note.trim());
    }
    if !note.trim().is_empty() {
        eprintln!("{}", note.trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// One node's generated config.
fn node_config(
    index: u16,
    port: u16,
    nats_url: Option<&str>,
    keys: &Path,
    dir: &Path,
) -> anyhow::Result<Config> {
    let mut config = Config::dev_default();
    config.node.id = format!("dev-{index}");
    config.node.listen = SocketAddr::from(([127, 0, 0, 1], port));
    config.node.drain_timeout = arqon_config::Duration::from_secs(2);
    config.auth.dev_keys_dir = keys.to_path_buf();
    config.governance.audit_path = dir.join(format!("audit-{index}.jsonl"));
    if let Some(url) = nats_url {
        config.spine.kind = SpineKind::Nats;
        config.spine.nats_urls = vec![url.to_owned()];
    }
    config.check()?;
    Ok(config)
}

/// Progress on stderr: one line per service as it starts and becomes ready.
struct Progress {
    done: usize,
    total: usize,
}

impl Progress {
    fn ready(&mut self, name: &str, took: Duration, what: &str) {
        self.done += 1;
        eprintln!(
            "[{}/{}] {name:<10} ready in {:.2}s  {what}",
            self.done,
            self.total,
            took.as_secs_f64()
        );
    }
}

/// A stack being started: its state and the children still held (reaped if startup fails).
struct Starting {
    state: State,
    children: Vec<Child>,
}

impl Starting {
    /// Starts `program` with its output in `process.log`, records it (with its PID) and saves the
    /// state at once; returns its slot.
    fn launch(
        &mut self,
        program: &Path,
        args: &[String],
        mut process: Process,
    ) -> anyhow::Result<usize> {
        let child = spawn(program, args, &process.log)?;
        process.pid = child.id();
        self.state.processes.push(process);
        self.children.push(child);
        self.state.save()?;
        Ok(self.children.len() - 1)
    }

    /// Waits until the process in `slot` answers 200 on `path` of its URL (or `monitor`, for NATS).
    fn wait(&mut self, slot: usize, path: &str, timeout: Duration) -> anyhow::Result<Duration> {
        let process = &self.state.processes[slot];
        let base = process.monitor.as_deref().unwrap_or(&process.url);
        wait_ready(
            &process.name,
            &mut self.children[slot],
            &format!("{base}{path}"),
            &process.log,
            timeout,
        )
    }

    /// Stops what was started and reaps it, after a failed `up`.
    fn abandon(mut self) {
        let stopped = stop_all(&self.state);
        for child in &mut self.children {
            let _ = child.try_wait();
        }
        if let Err(error) = stopped {
            eprintln!("error: while stopping the half-started stack: {error:#}");
        }
        let _ = self.state.remove();
    }
}

fn up(args: &UpArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("create {}", args.dir.display()))?;
    let dir = args.dir.canonicalize()?;
    if let Some(old) = State::load(&dir)? {
        let running: Vec<String> = old
            .processes
            .iter()
            .filter(|process| alive(process.pid) && owned(process.pid, &old.dir))
            .map(|process| format!("{} (pid {})", process.name, process.pid))
            .collect();
        if !running.is_empty() || old.compose_file.is_some() {
            bail!(
                "a dev stack is already running in {} ({}); run `arq dev down --dir {}` first",
                args.dir.display(),
                if running.is_empty() {
                    "docker compose".to_owned()
                } else {
                    running.join(", ")
                },
                args.dir.display()
            );
        }
        eprintln!("note: removing the state of a stack that is no longer running");
        old.remove()?;
    }
    let nats_server = find_on_path("nats-server");
    if nats_server.is_none() && args.nodes > 1 {
        bail!(
            "--nodes {} needs nats-server on PATH: the embedded spine is in-process and serves a single node",
            args.nodes
        );
    }
    let prometheus = find_on_path("prometheus").filter(|_| !args.no_prometheus);
    let exe = std::env::current_exe().context("cannot find the arq executable")?;
    let token = mint_token(&exe, &args.keys)?;
    let keys = args.keys.canonicalize()?;
    let mut starting = Starting {
        state: State {
            version: STATE_VERSION,
            dir: dir.clone(),
            spine: if nats_server.is_some() {
                "nats"
            } else {
                "embedded"
            }
            .to_owned(),
            processes: Vec::new(),
            compose_file: None,
        },
        children: Vec::new(),
    };
    let plan = Plan {
        args,
        exe: &exe,
        dir: &dir,
        keys: &keys,
        nats_server: nats_server.as_deref(),
        prometheus: prometheus.as_deref(),
    };
    match plan.start(&mut starting) {
        Ok(()) => {
            print_summary(args, &starting.state, &token)?;
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            starting.abandon();
            Err(error)
        }
    }
}

/// What `up` starts and with what.
struct Plan<'a> {
    args: &'a UpArgs,
    exe: &'a Path,
    dir: &'a Path,
    keys: &'a Path,
    nats_server: Option<&'a Path>,
    prometheus: Option<&'a Path>,
}

impl Plan<'_> {
    fn start(&self, starting: &mut Starting) -> anyhow::Result<()> {
        let args = self.args;
        let mut ports = Ports {
            all_free: args.free_ports,
            taken: HashSet::new(),
        };
        let mut progress = Progress {
            done: 0,
            total: usize::from(args.nodes)
                + usize::from(self.nats_server.is_some())
                + usize::from(self.prometheus.is_some()),
        };
        let nats_url = if let Some(binary) = self.nats_server {
            Some(self.start_nats(binary, &mut ports, &mut progress, starting)?)
        } else {
            eprintln!(
                "nats-server not found on PATH: using the embedded spine (in-process, one node; install nats-server for NATS)"
            );
            None
        };
        let mut waiting = Vec::new();
        for index in 1..=args.nodes {
            let explicit = match args.port {
                Some(0) => Some(0),
                Some(first) => Some(
                    first
                        .checked_add(index - 1)
                        .context("--port: node ports run past 65535")?,
                ),
                None => None,
            };
            let port = ports.pick(
                &format!("node dev-{index}"),
                explicit,
                NODE_PORT.saturating_add(index - 1),
            )?;
            let config = node_config(index, port, nats_url.as_deref(), self.keys, self.dir)?;
            let file = self.dir.join(format!("dev-{index}.toml"));
            std::fs::write(&file, config.to_toml()?)
                .with_context(|| format!("write {}", file.display()))?;
            let name = config.node.id.clone();
            let log = self.dir.join(format!("{name}.log"));
            let serve = vec![
                "serve".to_owned(),
                "--config".to_owned(),
                file.display().to_string(),
            ];
            let socket = format!("ws://127.0.0.1:{port}/v1/socket");
            let mut process =
                Process::new(&name, Kind::Node, format!("http://127.0.0.1:{port}"), log);
            process.socket = Some(socket.clone());
            waiting.push((starting.launch(self.exe, &serve, process)?, name, socket));
        }
        // The nodes start side by side; wait for each in turn.
        for (slot, name, socket) in waiting {
            let took = starting.wait(slot, "/readyz", args.timeout)?;
            progress.ready(&name, took, &socket);
        }
        if let Some(binary) = self.prometheus {
            self.start_prometheus(binary, &mut ports, &mut progress, starting)?;
        }
        Ok(())
    }

    fn start_nats(
        &self,
        binary: &Path,
        ports: &mut Ports,
        progress: &mut Progress,
        starting: &mut Starting,
    ) -> anyhow::Result<String> {
        let port = ports.pick("nats", self.args.nats_port, NATS_PORT)?;
        let monitor_port = ports.pick("nats monitoring", None, NATS_MONITOR_PORT)?;
        let log = self.dir.join("nats.log");
        // JetStream holds the rooms' history (on by default in [history]).
        let store = self.dir.join("jetstream").display().to_string();
        let nats_args: Vec<String> = [
            "-js",
            "-sd",
            &store,
            "-a",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            &monitor_port.to_string(),
            "-n",
            "arqon-dev",
            "-P",
            &self.dir.join("nats.pid").display().to_string(),
        ]
        .iter()
        .map(|arg| (*arg).to_owned())
        .collect();
        let url = format!("nats://127.0.0.1:{port}");
        let monitor = format!("http://127.0.0.1:{monitor_port}");
        let mut process = Process::new("nats", Kind::Nats, url.clone(), log);
        process.monitor = Some(monitor.clone());
        let slot = starting.launch(binary, &nats_args, process)?;
        let took = starting.wait(slot, "/healthz", self.args.timeout)?;
        progress.ready("nats", took, &format!("{url} (monitor {monitor})"));
        Ok(url)
    }

    fn start_prometheus(
        &self,
        binary: &Path,
        ports: &mut Ports,
        progress: &mut Progress,
        starting: &mut Starting,
    ) -> anyhow::Result<()> {
        let port = ports.pick("prometheus", self.args.prometheus_port, PROMETHEUS_PORT)?;
        let targets: Vec<String> = starting
            .state
            .processes
            .iter()
            .filter(|process| process.kind == Kind::Node)
            .map(|process| format!("\"{}\"", process.url.trim_start_matches("http://")))
            .collect();
        let config = self.dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "# Written by `arq dev up`: scrapes the dev nodes' /metrics.\nglobal:\n  scrape_interval: 5s\nscrape_configs:\n  - job_name: arqonbus\n    static_configs:\n      - targets: [{}]\n",
                targets.join(", ")
            ),
        )?;
        let log = self.dir.join("prometheus.log");
        let prometheus_args = vec![
            format!("--config.file={}", config.display()),
            format!(
                "--storage.tsdb.path={}",
                self.dir.join("prometheus-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        let url = format!("http://127.0.0.1:{port}");
        let process = Process::new("prometheus", Kind::Prometheus, url.clone(), log);
        let slot = starting.launch(binary, &prometheus_args, process)?;
        let took = starting.wait(slot, "/-/ready", self.args.timeout)?;
        progress.ready("prometheus", took, &url);
        Ok(())
    }
}

fn print_summary(args: &UpArgs, state: &State, token: &str) -> anyhow::Result<()> {
    let dir = args.dir.display();
    let mut out = std::io::stdout().lock();
    writeln!(out, "arqon dev stack ready (spine: {})", state.spine)?;
    for process in &state.processes {
        match process.kind {
            Kind::Nats => writeln!(
                out,
                "  nats:       {}  (monitor {})",
                process.url,
                process.monitor.as_deref().unwrap_or("-")
            )?,
            Kind::Node => {
                writeln!(
                    out,
                    "  node {}: {}",
                    process.name,
                    process.socket.as_deref().unwrap_or("-")
                )?;
                writeln!(out, "    health:   {}/healthz", process.url)?;
                writeln!(out, "    metrics:  {}/metrics", process.url)?;
            }
            Kind::Prometheus => writeln!(out, "  prometheus: {}", process.url)?,
        }
    }
    writeln!(out, "  token:      {token}")?;
    writeln!(
        out,
        "  more:       arq auth gen --keys {} --tenant dev --sub alice",
        args.keys.display()
    )?;
    writeln!(out, "  status:     arq status --dir {dir}")?;
    writeln!(out, "  logs:       arq dev logs --dir {dir}")?;
    writeln!(out, "  stop:       arq dev down --dir {dir}")?;
    writeln!(out, "  state:      {}", State::path(&args.dir).display())?;
    out.flush()?;
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum Signal {
    Term,
    Kill,
}

/// `kill` from `PATH`, else the system one (a dev stack may be stopped with an odd `PATH`).
#[cfg(unix)]
fn kill_program() -> PathBuf {
    find_on_path("kill").unwrap_or_else(|| PathBuf::from("/bin/kill"))
}

/// Sends `signal` to `pid`; false when it could not be delivered.
#[cfg(unix)]
fn send(pid: u32, signal: Signal) -> bool {
    let name = match signal {
        Signal::Term => "TERM",
        Signal::Kill => "KILL",
    };
    quietly(&kill_program(), &["-s", name, &pid.to_string()])
}

/// Runs a short system command with no input or output; true when it succeeds.
fn quietly(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Windows has no SIGTERM for console programs: both ask `taskkill` to end the process tree.
#[cfg(windows)]
fn send(pid: u32, _signal: Signal) -> bool {
    quietly(
        Path::new("taskkill"),
        &["/PID", &pid.to_string(), "/T", "/F"],
    )
}

/// Whether `pid` is a running process (a zombie is not).
#[cfg(target_os = "linux")]
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        stat.rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X')
    })
}

#[cfg(all(unix, not(target_os = "linux")))]
fn alive(pid: u32) -> bool {
    quietly(&kill_program(), &["-0", &pid.to_string()])
}

#[cfg(windows)]
fn alive(pid: u32) -> bool {
    Command::new("tasklist")
        .args(["/FI", &format!("PID eq {pid}"), "/NH"])
        .output()
        .is_ok_and(|output| {
            String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .any(|word| word == pid.to_string())
        })
}

/// Whether `pid` is still the process `dev up` started: its command line names the dev dir.
#[cfg(target_os = "linux")]
fn owned(pid: u32, dir: &Path) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|raw| String::from_utf8_lossy(&raw).contains(&*dir.to_string_lossy()))
}

/// Without `/proc` the command line is not checked.
#[cfg(not(target_os = "linux"))]
fn owned(_pid: u32, _dir: &Path) -> bool {
    true
}

/// Waits until none of `pids` is alive or `grace` passes; returns the survivors.
fn wait_gone(pids: &[u32], grace: Duration) -> Vec<u32> {
    let deadline = Instant::now() + grace;
    loop {
        let left: Vec<u32> = pids.iter().copied().filter(|pid| alive(*pid)).collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        std::thread::sleep(POLL);
    }
}

/// Stops every recorded process, nodes and Prometheus first, NATS last; one line per process.
fn stop_all(state: &State) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    let phases = [vec![Kind::Node, Kind::Prometheus], vec![Kind::Nats]];
    let mut survivors = Vec::new();
    for kinds in phases {
        let mut termed = Vec::new();
        for process in state
            .processes
            .iter()
            .filter(|process| kinds.contains(&process.kind) && process.pid != 0)
        {
            if !alive(process.pid) {
                lines.push(format!(
                    "{} (pid {}) was not running",
                    process.name, process.pid
                ));
            } else if !owned(process.pid, &state.dir) {
                lines.push(format!(
                    "{} (pid {}): that pid is now another program; left alone",
                    process.name, process.pid
                ));
            } else if send(process.pid, Signal::Term) {
                termed.push(process);
            }
        }
        let pids: Vec<u32> = termed.iter().map(|process| process.pid).collect();
        let stubborn = wait_gone(&pids, TERM_GRACE);
        for process in &termed {
            if stubborn.contains(&process.pid) {
                send(process.pid, Signal::Kill);
            }
        }
        let left = wait_gone(&stubborn, KILL_GRACE);
        for process in termed {
            lines.push(
                match (stubborn.contains(&process.pid), left.contains(&process.pid)) {
                    (false, _) => format!("stopped {} (pid {})", process.name, process.pid),
                    (true, false) => format!(
                        "killed {} (pid {}) after {}s",
                        process.name,
                        process.pid,
                        TERM_GRACE.as_secs()
                    ),
                    (true, true) => {
                        format!("{} (pid {}) survived SIGKILL", process.name, process.pid)
                    }
                },
            );
        }
        survivors.extend(left);
    }
    if !survivors.is_empty() {
        bail!("{}\nstill running: pids {survivors:?}", lines.join("\n"));
    }
    Ok(lines)
}

fn down(dir: &Path) -> anyhow::Result<ExitCode> {
    let Some(state) = State::load(dir)? else {
        println!("no dev stack in {} (nothing to stop)", dir.display());
        return Ok(ExitCode::SUCCESS);
    };
    if let Some(compose) = &state.compose_file {
        let docker = find_on_path("docker")
            .context("the stack runs in Docker, but `docker` is not on PATH")?;
        let status = Command::new(docker)
            .args(["compose", "-f"])
            .arg(compose)
            .arg("down")
            .stdin(Stdio::null())
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .context("run docker compose down")?;
        if !status.success() {
            bail!(
                "`docker compose -f {} down` failed ({status})",
                compose.display()
            );
        }
        println!("stopped the docker compose stack ({})", compose.display());
    }
    for line in stop_all(&state)? {
        println!("{line}");
    }
    state.remove()?;
    Ok(ExitCode::SUCCESS)
}

/// Runs a short command with a bound; kills it when it does not finish in time.
fn run_bounded(mut command: Command, what: &str, bound: Duration) -> anyhow::Result<Output> {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {what}"))?;
    let pid = child.id();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait_with_output());
    });
    if let Ok(output) = done.recv_timeout(bound) {
        output.with_context(|| format!("run {what}"))
    } else {
        send(pid, Signal::Kill);
        bail!("{what} did not answer within {}s", bound.as_secs())
    }
}

fn docker_up(args: &UpArgs) -> anyhow::Result<ExitCode> {
    let docker = find_on_path("docker").context(
        "--docker needs the docker CLI, and `docker` is not on PATH; `arq dev up` without --docker runs the stack as local processes",
    )?;
    let mut info = Command::new(&docker);
    info.args(["info", "--format", "{{.ServerVersion}}"]);
    let output = run_bounded(info, "`docker info`", Duration::from_secs(20))?;
    if !output.status.success() {
        let why = String::from_utf8_lossy(&output.stderr);
        bail!(
            "--docker: no Docker engine answers (`docker info`: {}); `arq dev up` without --docker runs the stack as local processes",
            why.lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("failed")
                .trim()
        );
    }
    let compose = args
        .compose_file
        .canonicalize()
        .with_context(|| format!("--compose-file {}", args.compose_file.display()))?;
    eprintln!(
        "docker engine {}: docker compose -f {} up -d",
        String::from_utf8_lossy(&output.stdout).trim(),
        compose.display()
    );
    let status = Command::new(&docker)
        .args(["compose", "-f"])
        .arg(&compose)
        .args(["up", "-d"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(std::io::stderr()))
        .status()
        .context("run docker compose up")?;
    if !status.success() {
        bail!(
            "`docker compose -f {} up -d` failed ({status})",
            compose.display()
        );
    }
    std::fs::create_dir_all(&args.dir)?;
    let state = State {
        version: STATE_VERSION,
        dir: args.dir.canonicalize()?,
        spine: "docker".to_owned(),
        processes: Vec::new(),
        compose_file: Some(compose.clone()),
    };
    state.save()?;
    println!("docker compose stack up ({})", compose.display());
    println!("  ps:    docker compose -f {} ps", compose.display());
    println!("  stop:  arq dev down --dir {}", args.dir.display());
    Ok(ExitCode::SUCCESS)
}

/// The services whose logs to print: from the state, else every `*.log` in the dir.
fn log_files(dir: &Path, only: &[String]) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut files: Vec<(String, PathBuf)> = if let Some(state) = State::load(dir)? {
        state
            .processes
            .into_iter()
            .map(|process| (process.name, process.log))
            .collect()
    } else {
        let mut found = BTreeMap::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("no dev stack in {}", dir.display()))?
        {
            let path = entry?.path();
            if path.extension().is_some_and(|ext| ext == "log")
                && let Some(stem) = path.file_stem()
            {
                found.insert(stem.to_string_lossy().into_owned(), path);
            }
        }
        found.into_iter().collect()
    };

    if !only.is_empty() {
        if let Some(unknown) = only
            .iter()
            .find(|name| !files.iter().any(|(n, _)| n == *name))
        {
            let known: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
            bail!(
                "no service {unknown:?} in this stack (services: {})",
                known.join(", ")
            );
        }
        files.retain(|(name, _)| only.contains(name));
    }
    if files.is_empty() {
        bail!("no logs in {}", dir.display());
    }
    Ok(files)
}

fn logs(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let files = log_files(&args.dir, &args.services)?;
    let mut out = std::io::stdout().lock();
    let mut offsets = Vec::new();
    for (name, path) in &files {
        let mut text = Vec::new();
        if let Ok(mut file) = File::open(path) {
            file.read_to_end(&mut text)?;
        }
        writeln!(out, "==> {name} ({}) <==", path.display())?;
        out.write_all(&text)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            writeln!(out)?;
        }
        offsets.push(u64::try_from(text.len())?);
    }
    out.flush()?;
    drop(out);
    if args.follow {
        follow(&args.dir, &files, offsets)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints lines appended to the log files until the state file disappears (`dev down`).
fn follow(dir: &Path, files: &[(String, PathBuf)], mut offsets: Vec<u64>) -> anyhow::Result<()> {
    let mut pending: Vec<String> = files.iter().map(|_| String::new()).collect();
    loop {
        let running = State::path(dir).exists();
        let mut out = std::io::stdout().lock();
        for (index, (name, path)) in files.iter().enumerate() {
            let Ok(mut file) = File::open(path) else {
                continue;
            };
            let length = file.metadata()?.len();
            if length < offsets[index] {
                // Truncated (a new `dev up`): start over.
                offsets[index] = 0;
            }
            file.seek(SeekFrom::Start(offsets[index]))?;
            let mut fresh = Vec::new();
            file.read_to_end(&mut fresh)?;
            offsets[index] += u64::try_from(fresh.len())?;
            pending[index].push_str(&String::from_utf8_lossy(&fresh));
            while let Some(end) = pending[index].find('\n') {
                let line: String = pending[index].drain(..=end).collect();
                write!(out, "[{name}] {line}")?;
            }
        }
        out.flush()?;
        if !running {
            return Ok(());
        }
        // Tailing files: look again shortly.
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_ports_are_used_as_given_and_taken_ones_refused() {
        let holder = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let busy = holder.local_addr().unwrap().port();
        let mut ports = Ports {
            all_free: false,
            taken: HashSet::new(),
        };
        assert!(ports.pick("x", Some(busy), 1).is_err());
        // A taken standard port falls back to a free one.
        let fallback = ports.pick("x", None, busy).unwrap();
        assert_ne!(fallback, busy);
        // Free ports are never handed out twice.
        let a = ports.pick("a", Some(0), 1).unwrap();
        let b = ports.pick("b", Some(0), 1).unwrap();
        assert_ne!(a, b);
        assert!(!ports.taken.insert(a));
    }

    #[test]
    fn node_configs_are_valid_dev_configs_on_the_stack_spine() {
        let keys = Path::new("/tmp/keys");
        let config = node_config(
            2,
            18081,
            Some("nats://127.0.0.1:14222"),
            keys,
            Path::new("/tmp/d"),
        )
        .unwrap();
        assert_eq!(config.node.id, "dev-2");
        assert_eq!(config.node.listen.port(), 18081);
        assert_eq!(config.spine.kind, SpineKind::Nats);
        assert_eq!(config.auth.dev_keys_dir, keys);
        let embedded = node_config(1, 18080, None, keys, Path::new("/tmp/d")).unwrap();
        assert_eq!(embedded.spine.kind, SpineKind::Embedded);
        let text = embedded.to_toml().unwrap();
        assert!(Config::from_toml_str(&text, "dev-1.toml").is_ok());
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn own_process_is_alive_and_an_unused_pid_is_not() {
        assert!(alive(std::process::id()));
        assert!(!alive(u32::MAX - 1));
    }
}

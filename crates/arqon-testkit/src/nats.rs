//! Real `nats-server` processes for tests: one node or a cluster with `JetStream`, on free ports, killed on drop.
//!
//! Readiness is an event, not a sleep: a server is ready when it logs `Server is ready`; a
//! cluster is ready when every node's monitoring endpoint reports all routes (and, with
//! `JetStream`, a healthy `/healthz`), checked in a bounded loop.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::watch;

use crate::error::TestkitError;
use crate::ports::free_port;

/// Where the server binary lives on this machine; `NATS_SERVER` overrides it.
pub const DEFAULT_NATS_SERVER: &str = "/usr/sbin/nats-server";

/// How long a node may take to log readiness.
const READY_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a cluster may take to mesh and elect a `JetStream` leader.
const CLUSTER_TIMEOUT: Duration = Duration::from_mins(1);
/// Interval between two looks at a monitoring endpoint while waiting for a condition.
const POLL: Duration = Duration::from_millis(25);
/// Log lines kept per node for error messages.
const LOG_LINES: usize = 64;

fn binary() -> PathBuf {
    std::env::var_os("NATS_SERVER")
        .map_or_else(|| PathBuf::from(DEFAULT_NATS_SERVER), PathBuf::from)
}

/// The ports a node listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Ports {
    client: u16,
    monitor: u16,
    cluster: u16,
}

impl Ports {
    fn allocate() -> Result<Self, TestkitError> {
        Ok(Self {
            client: free_port()?,
            monitor: free_port()?,
            cluster: free_port()?,
        })
    }
}

/// How a node is started; kept so that [`NatsServer::restart`] starts the same node again.
#[derive(Clone, Debug)]
struct Spec {
    name: String,
    ports: Ports,
    store: Option<PathBuf>,
    /// `(cluster name, route URLs)` when the node is part of a cluster.
    cluster: Option<(String, Vec<String>)>,
}

impl Spec {
    fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.ports.client.to_string(),
            "-m".into(),
            self.ports.monitor.to_string(),
            "-n".into(),
            self.name.clone(),
        ];
        if let Some(store) = &self.store {
            args.extend(["-js".into(), "-sd".into(), store.display().to_string()]);
        }
        if let Some((cluster_name, routes)) = &self.cluster {
            args.extend([
                "--cluster_name".into(),
                cluster_name.clone(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", self.ports.cluster),
                "--routes".into(),
                routes.join(","),
            ]);
        }
        args
    }
}

/// One running (or killed) `nats-server` process.
#[derive(Debug)]
pub struct NatsServer {
    spec: Spec,
    child: Option<Child>,
    log: Arc<Mutex<VecDeque<String>>>,
    store_dir: Option<tempfile::TempDir>,
}

/// Options for [`NatsServer::start_with`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NatsOptions {
    /// Enable `JetStream` with a temporary store directory.
    pub jetstream: bool,
}

impl NatsServer {
    /// Starts a plain node (no `JetStream`) on free ports and waits until it is ready.
    pub async fn start() -> Result<Self, TestkitError> {
        Self::start_with(NatsOptions::default()).await
    }

    /// Starts a node with `JetStream` and a temporary store.
    pub async fn start_jetstream() -> Result<Self, TestkitError> {
        Self::start_with(NatsOptions { jetstream: true }).await
    }

    /// Starts a node with `options`, retrying on fresh ports if another process took one meanwhile.
    pub async fn start_with(options: NatsOptions) -> Result<Self, TestkitError> {
        let store_dir = if options.jetstream {
            Some(tempfile::tempdir()?)
        } else {
            None
        };
        let mut last_error = None;
        for _ in 0..3 {
            let ports = Ports::allocate()?;
            let spec = Spec {
                name: format!("arqon-test-{}-{}", std::process::id(), ports.client),
                ports,
                store: store_dir.as_ref().map(|d| d.path().to_path_buf()),
                cluster: None,
            };
            let mut server = Self {
                spec,
                child: None,
                log: Arc::default(),
                store_dir: None,
            };
            match server.spawn().await {
                Ok(()) => {
                    server.store_dir = store_dir;
                    return Ok(server);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or(TestkitError::NotReady {
            what: "nats-server".into(),
            log: String::new(),
        }))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.spec.ports.client)
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.spec.ports.client
    }

    /// The HTTP monitoring port (`/varz`, `/subsz`, `/routez`, `/healthz`).
    pub fn monitor_port(&self) -> u16 {
        self.spec.ports.monitor
    }

    /// The server name (`-n`).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether the process is running (not killed by [`NatsServer::kill`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The last lines the server logged.
    pub fn log_tail(&self) -> String {
        let log = self.log.lock().unwrap_or_else(PoisonError::into_inner);
        log.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// GETs a monitoring endpoint (for example `/subsz`) and parses its JSON body.
    pub async fn monitor(&self, path: &str) -> Result<serde_json::Value, TestkitError> {
        let (status, body) = http_get(self.spec.ports.monitor, path).await?;
        if status != 200 {
            return Err(TestkitError::Http {
                path: path.to_owned(),
                detail: format!("status {status}"),
            });
        }
        serde_json::from_slice(&body).map_err(|e| TestkitError::Http {
            path: path.to_owned(),
            detail: e.to_string(),
        })
    }

    /// Kills the process with SIGKILL and reaps it; no-op when already killed.
    pub async fn kill(&mut self) -> Result<(), TestkitError> {
        if let Some(mut child) = self.child.take() {
            child.kill().await?;
        }
        Ok(())
    }

    /// Starts the same node again: same name, ports, routes and store.
    pub async fn restart(&mut self) -> Result<(), TestkitError> {
        self.kill().await?;
        self.spawn().await
    }

    async fn spawn(&mut self) -> Result<(), TestkitError> {
        let mut child = Command::new(binary())
            .args(self.spec.args())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stderr = child.stderr.take().ok_or_else(|| TestkitError::NotReady {
            what: self.spec.name.clone(),
            log: "no stderr pipe".into(),
        })?;
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let log = Arc::clone(&self.log);
        // Drains the log for the process's whole life, or the pipe would fill and stall the server.
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains("Server is ready") {
                    ready_tx.send_replace(true);
                }
                let mut log = log.lock().unwrap_or_else(PoisonError::into_inner);
                if log.len() == LOG_LINES {
                    log.pop_front();
                }
                log.push_back(line);
            }
        });
        let ready = tokio::time::timeout(READY_TIMEOUT, ready_rx.wait_for(|r| *r)).await;
        if matches!(ready, Ok(Ok(_))) {
            self.child = Some(child);
            return Ok(());
        }
        // Ended (bad port, bad flags) or too slow: reap it and report what it said.
        child.kill().await.ok();
        Err(TestkitError::NotReady {
            what: self.spec.name.clone(),
            log: self.log_tail(),
        })
    }

    /// Waits until `check` holds for this node's monitoring endpoint `path`, polling it.
    async fn wait_monitor(
        &self,
        path: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<(), TestkitError> {
        let what = format!("{} {path}", self.spec.name);
        tokio::time::timeout(CLUSTER_TIMEOUT, async {
            let mut tick = tokio::time::interval(POLL);
            loop {
                tick.tick().await;
                if let Ok((_, body)) = http_get(self.spec.ports.monitor, path).await
                    && serde_json::from_slice(&body).is_ok_and(|v| check(&v))
                {
                    return;
                }
            }
        })
        .await
        .map_err(|_| TestkitError::NotReady {
            what,
            log: self.log_tail(),
        })
    }
}

/// A full-mesh cluster of `nats-server` nodes with `JetStream`.
#[derive(Debug)]
pub struct NatsCluster {
    nodes: Vec<NatsServer>,
}

impl NatsCluster {
    /// Starts `size` nodes with `JetStream`, routed to each other, and waits until every node has
    /// all its routes and `JetStream` is healthy.
    /// Retries on fresh ports when a node fails to start (another process took a port meanwhile).
    pub async fn start(size: usize) -> Result<Self, TestkitError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::try_start(size).await {
                Err(TestkitError::NotReady { .. }) if attempt < 3 => {}
                done => return done,
            }
        }
    }

    async fn try_start(size: usize) -> Result<Self, TestkitError> {
        let size = size.max(1);
        let ports = (0..size)
            .map(|_| Ports::allocate())
            .collect::<Result<Vec<_>, _>>()?;
        let routes: Vec<String> = ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{}", p.cluster))
            .collect();
        let cluster_name = format!("arqon-test-{}-{}", std::process::id(), ports[0].client);
        let mut nodes = Vec::with_capacity(size);
        for (i, node_ports) in ports.iter().enumerate() {
            let store_dir = tempfile::tempdir()?;
            let spec = Spec {
                name: format!("{cluster_name}-n{i}"),
                ports: *node_ports,
                store: Some(store_dir.path().to_path_buf()),
                cluster: Some((cluster_name.clone(), routes.clone())),
            };
            nodes.push(NatsServer {
                spec,
                child: None,
                log: Arc::default(),
                store_dir: Some(store_dir),
            });
        }
        for node in &mut nodes {
            node.spawn().await?;
        }
        let cluster = Self { nodes };
        cluster.wait_meshed().await?;
        Ok(cluster)
    }

    /// The nodes, in start order.
    pub fn nodes(&self) -> &[NatsServer] {
        &self.nodes
    }

    /// Node `i`.
    pub fn node(&self, i: usize) -> &NatsServer {
        &self.nodes[i]
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(NatsServer::url).collect()
    }

    /// Kills node `i` with SIGKILL.
    pub async fn kill(&mut self, i: usize) -> Result<(), TestkitError> {
        self.nodes[i].kill().await
    }

    /// Restarts node `i` on its ports and waits until the cluster is whole again.
    pub async fn restart(&mut self, i: usize) -> Result<(), TestkitError> {
        self.nodes[i].restart().await?;
        self.wait_meshed().await
    }

    /// Waits until every running node routes to exactly the other running nodes and `JetStream`
    /// is healthy.
    pub async fn wait_meshed(&self) -> Result<(), TestkitError> {
        let running = self.nodes.iter().filter(|n| n.is_running()).count();
        let peers = u64::try_from(running.saturating_sub(1)).unwrap_or(u64::MAX);
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            node.wait_monitor("/routez", |v| {
                v.get("num_routes").and_then(serde_json::Value::as_u64) == Some(peers)
            })
            .await?;
        }
        for node in self.nodes.iter().filter(|n| n.is_running()) {
            node.wait_monitor("/healthz", |v| {
                v.get("status").and_then(serde_json::Value::as_str) == Some("ok")
            })
            .await?;
        }
        Ok(())
    }
}

/// A minimal HTTP/1.0 GET against the local monitoring port: `(status, body)`.
async fn http_get(port: u16, path: &str) -> Result<(u16, Vec<u8>), TestkitError> {
    let http_error = |detail: String| TestkitError::Http {
        path: path.to_owned(),
        detail,
    };
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| http_error("no header end".into()))?;
    let head = String::from_utf8_lossy(&response[..split]);
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| http_error("no status".into()))?;
    Ok((status, response[split + 4..].to_vec()))
}

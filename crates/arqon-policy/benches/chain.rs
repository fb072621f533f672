//! Per-message overhead of policy chains: p50/p99/p999 of one- and three-policy chains.
//!
//! Run with `cargo bench -p arqon-policy`. Each case evaluates the same clean 256-byte message
//! (so every policy in the chain runs) after a warm-up, timing every evaluation separately.
//! Set `ARQON_BENCH_ITERS` to change the number of timed evaluations (default 50 000).

use std::error::Error;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arqon_policy::{Chain, HostConfig, Policy, PolicyHost, PolicyInput, PolicySet, Scope};

const WARMUP: usize = 2_000;

fn fixture(name: &str) -> Result<Vec<u8>, Box<dyn Error>> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.wat"));
    Ok(std::fs::read(path)?)
}

fn rust_example(name: &str) -> Option<Vec<u8>> {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    std::fs::read(target.join(format!(
        "wasm32-unknown-unknown/release/examples/{name}.wasm"
    )))
    .ok()
}

fn compile(host: &PolicyHost, name: &str) -> Result<Policy, Box<dyn Error>> {
    Ok(Policy::compile(host, name, &fixture(name)?)?)
}

/// Times `iterations` calls of `run`, returning nanoseconds, sorted.
fn measure(iterations: usize, mut run: impl FnMut() -> bool) -> Vec<u64> {
    for _ in 0..WARMUP {
        black_box(run());
    }
    let mut samples: Vec<u64> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            black_box(run());
            u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX)
        })
        .collect();
    samples.sort_unstable();
    samples
}

fn percentile(sorted: &[u64], per_mille: usize) -> f64 {
    let index = (sorted.len() * per_mille / 1000).min(sorted.len().saturating_sub(1));
    sorted.get(index).map_or(0.0, |ns| to_us(*ns))
}

#[allow(clippy::cast_precision_loss)]
fn to_us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn report(case: &str, sorted: &[u64]) {
    println!(
        "{case:<44} n={:<7} p50={:>7.2}µs p99={:>7.2}µs p999={:>8.2}µs max={:>9.2}µs",
        sorted.len(),
        percentile(sorted, 500),
        percentile(sorted, 990),
        percentile(sorted, 999),
        sorted.last().map_or(0.0, |ns| to_us(*ns)),
    );
}

fn main() -> Result<(), Box<dyn Error>> {
    let iterations = std::env::var("ARQON_BENCH_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let host = PolicyHost::new(HostConfig::default())?;
    let payload =
        b"hello team, the build is green and the deploy is scheduled for noon. ".repeat(4);
    let payload = &payload[..256];
    let headers = [("message_id", "m-1"), ("content_type", "text/plain")];
    let input = PolicyInput {
        tenant: "acme",
        room: "lobby",
        sender: "alice",
        headers: &headers,
        payload,
    };

    // What a load or a deploy costs per module: compile, ABI check and self-test. This is the one
    // case that depends on how cranelift itself was built (Cargo.toml's release profile).
    report(
        "compile + self-test [bad_words.wat]",
        &measure(iterations / 100, || compile(&host, "bad_words").is_ok()),
    );

    let empty = Chain::default();
    report(
        "empty chain (baseline)",
        &measure(iterations, || empty.evaluate(&input).is_allow()),
    );
    let one = Chain::new([compile(&host, "bad_words")?]);
    report(
        "1 policy  [bad_words.wat]",
        &measure(iterations, || one.evaluate(&input).is_allow()),
    );
    let three = Chain::new([
        compile(&host, "allow_all")?,
        compile(&host, "payload_size")?,
        compile(&host, "bad_words")?,
    ]);
    report(
        "3 policies [allow_all, payload_size, bad_words]",
        &measure(iterations, || three.evaluate(&input).is_allow()),
    );

    let set = PolicySet::new();
    set.deploy(
        &host,
        Scope::Global,
        &[arqon_policy::ModuleSource {
            name: "size",
            bytes: &fixture("payload_size")?,
        }],
    )?;
    set.deploy(
        &host,
        Scope::Tenant("acme".into()),
        &[arqon_policy::ModuleSource {
            name: "words",
            bytes: &fixture("bad_words")?,
        }],
    )?;
    report(
        "PolicySet global[size] + tenant[bad_words]",
        &measure(iterations, || set.evaluate(&input).is_allow()),
    );

    match rust_example("bad_words") {
        Some(bytes) => {
            let rust = Chain::new([Policy::compile(&host, "bad_words.rs", &bytes)?]);
            report(
                "1 policy  [bad_words, Rust SDK build]",
                &measure(iterations, || rust.evaluate(&input).is_allow()),
            );
        }
        None => println!(
            "1 policy  [bad_words, Rust SDK build]        skipped: build it with \
             cargo build -p arqon-policy-examples --examples --release --target wasm32-unknown-unknown"
        ),
    }
    Ok(())
}

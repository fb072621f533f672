//! The Rust example policies built with `arqon-policy-sdk` judge like the `.wat` fixtures.
//!
//! Needs `cargo build -p arqon-policy-examples --examples --release --target wasm32-unknown-unknown`;
//! skips (loudly) only when those artifacts are absent. The `.wat` tests never skip.

use std::path::PathBuf;

use arqon_policy::{Chain, Policy, PolicyHost};

use crate::support::{compile, host, input};

fn artifact(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    target.join(format!(
        "wasm32-unknown-unknown/release/examples/{name}.wasm"
    ))
}

fn rust_policy(host: &PolicyHost, name: &str) -> Option<Policy> {
    let path = artifact(name);
    let Ok(bytes) = std::fs::read(&path) else {
        eprintln!(
            "\n!!! SKIPPED AC-POLICY-14 for {name}: {} is absent.\n!!! Build it with: cargo build -p arqon-policy-examples --examples --release --target wasm32-unknown-unknown\n",
            path.display()
        );
        return None;
    };
    Some(Policy::compile(host, name, &bytes).unwrap())
}

fn corpus() -> Vec<Vec<u8>> {
    let mut corpus: Vec<Vec<u8>> = [
        &b""[..],
        b"hello",
        b"malware",
        b"MALWARE at the start",
        b"ends with viruS",
        b"mal-ware vir us",
        b"\xff\xfe binary malwar",
        b"malwarevirus",
    ]
    .iter()
    .map(|p| p.to_vec())
    .collect();
    corpus.push(vec![b'a'; 4096]);
    corpus.push(vec![b'a'; 4097]);
    corpus.push(b"virus ".repeat(700));
    corpus
}

/// `(code name, policy's reason)` of a verdict, without the policy's name.
fn outcome(verdict: arqon_policy::Verdict) -> Option<(&'static str, String)> {
    match verdict {
        arqon_policy::Verdict::Allow => None,
        arqon_policy::Verdict::Block(block) => {
            Some((block.code_name(), format!("{:?}", block.reason)))
        }
    }
}

// AC-POLICY-14
#[test]
fn ac_policy_14_rust_built_policies_judge_like_the_wat_fixtures() {
    let host = host();
    for (rust, wat) in [("bad_words", "bad_words"), ("payload_size", "payload_size")] {
        let Some(rust_policy) = rust_policy(&host, rust) else {
            continue;
        };
        let (rust_chain, wat_chain) =
            (Chain::new([rust_policy]), Chain::new([compile(&host, wat)]));
        let mut blocked = 0;
        for payload in corpus() {
            let (from_rust, from_wat) = (
                outcome(rust_chain.evaluate(&input(&payload))),
                outcome(wat_chain.evaluate(&input(&payload))),
            );
            assert_eq!(from_rust, from_wat, "{rust} on {} bytes", payload.len());
            blocked += usize::from(from_rust.is_some());
        }
        assert!(blocked > 0, "{rust} blocked nothing");
    }
}

//! Shared helpers: hosts, fixtures, inputs and verdict checks.

use std::path::Path;
use std::time::Duration;

use arqon_policy::{
    Block, BlockReason, HostConfig, ModuleSource, Policy, PolicyHost, PolicyInput, Verdict,
};

/// A host whose budget is generous, so that a loaded test machine never times out a good policy.
pub(crate) fn host() -> PolicyHost {
    host_with(HostConfig {
        time_budget: Duration::from_millis(500),
        epoch_tick: Duration::from_millis(5),
        ..HostConfig::default()
    })
}

pub(crate) fn host_with(config: HostConfig) -> PolicyHost {
    PolicyHost::new(config).unwrap()
}

/// The bytes of `fixtures/<name>.wat`.
pub(crate) fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(format!("{name}.wat"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

pub(crate) fn compile(host: &PolicyHost, name: &str) -> Policy {
    Policy::compile(host, name, &fixture(name)).unwrap()
}

pub(crate) fn source<'a>(name: &'a str, bytes: &'a [u8]) -> ModuleSource<'a> {
    ModuleSource { name, bytes }
}

/// A message of tenant `acme` in room `lobby` from `alice`.
pub(crate) fn input(payload: &[u8]) -> PolicyInput<'_> {
    input_for("acme", payload)
}

pub(crate) fn input_for<'a>(tenant: &'a str, payload: &'a [u8]) -> PolicyInput<'a> {
    PolicyInput {
        tenant,
        room: "lobby",
        sender: "alice",
        headers: &[("message_id", "m-1"), ("content_type", "text/plain")],
        payload,
    }
}

/// The block of a verdict; fails the test on allow.
pub(crate) fn block(verdict: Verdict) -> Block {
    match verdict {
        Verdict::Block(block) => block,
        Verdict::Allow => panic!("expected a block, got allow"),
    }
}

/// `(policy name, code name, policy's own reason if any)` of a block.
pub(crate) fn describe(verdict: Verdict) -> (String, &'static str, Option<String>) {
    let block = block(verdict);
    let own = match &block.reason {
        BlockReason::Policy(reason) => Some(reason.clone()),
        BlockReason::Failure(_) => None,
    };
    (block.policy.to_string(), block.code_name(), own)
}

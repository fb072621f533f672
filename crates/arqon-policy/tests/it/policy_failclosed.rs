//! Every way a policy can fail blocks the message with its own code, and the host keeps serving.

use std::time::{Duration, Instant};

use arqon_policy::{
    AbiViolation, BlockReason, Chain, HostConfig, LoadError, MemoryFailure, Policy, PolicyCode,
    PolicyFailure, Verdict,
};

use crate::support::{block, compile, fixture, host, host_with, input, source};

fn failure(verdict: Verdict) -> PolicyFailure {
    match block(verdict).reason {
        BlockReason::Failure(failure) => failure,
        BlockReason::Policy(reason) => panic!("expected a failure, got a policy block: {reason}"),
    }
}

// AC-POLICY-2
#[test]
fn ac_policy_2_a_trap_blocks_with_policy_trap_and_the_host_keeps_serving() {
    let host = host();
    let chain = Chain::new([compile(&host, "trap")]);
    let failed = failure(chain.evaluate(&input(b"!boom")));
    assert_eq!(failed.code_name(), "POLICY_TRAP");
    assert!(matches!(failed, PolicyFailure::Trap(_)), "{failed:?}");
    assert_eq!(chain.evaluate(&input(b"a clean message")), Verdict::Allow);
    let again = failure(chain.evaluate(&input(b"!again")));
    assert_eq!(again.code(), PolicyCode::Trap);
}

// AC-POLICY-3
#[test]
fn ac_policy_3_an_infinite_loop_is_stopped_with_policy_timeout_within_the_budget() {
    let budget = Duration::from_millis(20);
    let tick = Duration::from_millis(5);
    let host = host_with(HostConfig {
        time_budget: budget,
        epoch_tick: tick,
        ..HostConfig::default()
    });
    let chain = Chain::new([compile(&host, "infinite_loop")]);
    for _ in 0..3 {
        let started = Instant::now();
        let failed = failure(chain.evaluate(&input(b"!spin")));
        let took = started.elapsed();
        assert_eq!(failed, PolicyFailure::Timeout);
        assert_eq!(failed.code().name(), "POLICY_TIMEOUT");
        // Ticks never come early, so a policy always gets its whole budget.
        assert!(took >= budget, "stopped after {took:?}, before the budget");
        // Budget + one tick, plus generous slack for a loaded, shared test machine.
        assert!(
            took < budget + tick + Duration::from_secs(2),
            "took {took:?}"
        );
    }
    assert_eq!(chain.evaluate(&input(b"fine")), Verdict::Allow);
}

// AC-POLICY-4
#[test]
fn ac_policy_4_a_memory_bomb_is_blocked_with_policy_memory() {
    let limit = 4 << 20;
    let host = host_with(HostConfig {
        memory_limit: limit,
        ..HostConfig::default()
    });
    let chain = Chain::new([compile(&host, "memory_bomb")]);
    let failed = failure(chain.evaluate(&input(b"!grow")));
    assert_eq!(failed.code(), PolicyCode::Memory);
    assert!(
        matches!(failed, PolicyFailure::Memory(MemoryFailure::LimitExceeded { limit: l, desired }) if l == limit && desired > limit),
        "{failed:?}"
    );
    assert_eq!(chain.evaluate(&input(b"small")), Verdict::Allow);
}

// AC-POLICY-4
#[test]
fn ac_policy_4_an_input_over_the_limit_is_blocked_with_policy_memory() {
    let host = host_with(HostConfig {
        max_input: 1024,
        ..HostConfig::default()
    });
    let chain = Chain::new([compile(&host, "allow_all")]);
    let failed = failure(chain.evaluate(&input(&[b'a'; 2048])));
    assert!(
        matches!(
            failed,
            PolicyFailure::Memory(MemoryFailure::InputTooLarge { limit: 1024, .. })
        ),
        "{failed:?}"
    );
}

fn refused(name: &str) -> LoadError {
    Policy::compile(&host(), name, &fixture(name)).unwrap_err()
}

// AC-POLICY-5
#[test]
fn ac_policy_5_wrong_exports_imports_and_versions_are_refused_with_policy_abi() {
    assert_eq!(
        refused("missing_evaluate"),
        LoadError::MissingExport("arqon_evaluate")
    );
    assert_eq!(
        refused("wrong_type_evaluate"),
        LoadError::WrongExportType {
            name: "arqon_evaluate",
            expected: "(i32, i32) -> i64",
            found: "(i32) -> i32".into(),
        }
    );
    assert_eq!(
        refused("wrong_abi_version"),
        LoadError::AbiVersion { found: 2 }
    );
    assert_eq!(
        refused("imports_host"),
        LoadError::Import {
            module: "env".into(),
            name: "log".into()
        }
    );
    for name in [
        "missing_evaluate",
        "wrong_type_evaluate",
        "wrong_abi_version",
        "imports_host",
    ] {
        assert_eq!(refused(name).code_name(), "POLICY_ABI", "{name}");
    }
}

// AC-POLICY-5
#[test]
fn ac_policy_5_a_chain_built_fail_closed_blocks_everything_with_policy_abi() {
    let host = host();
    let bytes = fixture("wrong_type_evaluate");
    let chain = Chain::fail_closed_from(&host, &[source("typo", &bytes)]);
    for payload in [&b"hello"[..], b"", b"anything"] {
        let block = block(chain.evaluate(&input(payload)));
        assert_eq!(block.code_name(), "POLICY_ABI");
        assert_eq!(&*block.policy, "typo");
    }
    assert_eq!(chain.listing()[0].failing_with, Some("POLICY_ABI"));
}

// AC-POLICY-6
#[test]
fn ac_policy_6_garbage_and_self_test_failures_are_refused_with_policy_load() {
    let host = host();
    assert!(matches!(refused("not_wasm"), LoadError::Compile(_)));
    let garbage = Policy::compile(&host, "garbage", b"\0asm\x01\0\0\0garbage").unwrap_err();
    assert!(matches!(garbage, LoadError::Compile(_)));
    assert_eq!(garbage.code_name(), "POLICY_LOAD");
    assert_eq!(
        refused("selftest_fails"),
        LoadError::SelfTest(BlockReason::Policy("nope".into()))
    );
    for name in ["not_wasm", "selftest_fails"] {
        assert_eq!(refused(name).code_name(), "POLICY_LOAD", "{name}");
    }
    let chain = Chain::fail_closed_from(&host, &[source("garbage", b"garbage")]);
    assert_eq!(
        block(chain.evaluate(&input(b"hello"))).code_name(),
        "POLICY_LOAD"
    );
}

#[test]
fn a_module_failing_its_self_test_by_trapping_is_refused_with_the_trap_code() {
    let always_traps = r#"(module (memory (export "memory") 1)
        (func (export "arqon_policy_abi_version") (result i32) (i32.const 1))
        (func (export "arqon_alloc") (param i32) (result i32) (i32.const 1024))
        (func (export "arqon_evaluate") (param i32 i32) (result i64) (unreachable)))"#;
    let error = Policy::compile(&host(), "always-traps", always_traps.as_bytes()).unwrap_err();
    assert!(matches!(
        error,
        LoadError::SelfTest(BlockReason::Failure(PolicyFailure::Trap(_)))
    ));
    assert_eq!(error.code_name(), "POLICY_TRAP");
}

// AC-POLICY-13
#[test]
fn ac_policy_13_a_malformed_verdict_or_reason_is_blocked_with_policy_abi() {
    let host = host();
    let chain = Chain::new([compile(&host, "bad_verdict")]);
    let unknown = failure(chain.evaluate(&input(b"!xx")));
    assert!(
        matches!(unknown, PolicyFailure::Abi(AbiViolation::BadVerdict(_))),
        "{unknown:?}"
    );
    let outside = failure(chain.evaluate(&input(b"!?")));
    assert_eq!(outside, PolicyFailure::Abi(AbiViolation::ReasonOutOfBounds));
    assert_eq!(outside.code().name(), "POLICY_ABI");
    assert_eq!(chain.evaluate(&input(b"clean")), Verdict::Allow);
}

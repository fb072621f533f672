//! Wasm policy chain host: compiles, checks and runs tenant safety policies, failing closed.
//!
//! `specs/policy.md` is the contract. In short:
//! - [`PolicyHost`] is one wasmtime engine (pooling allocator, epoch interruption for the time
//!   budget, a memory limit per evaluation) with its epoch ticker thread.
//! - [`Policy::compile`] checks a module against ABI v1 (`arqon_policy_sdk::abi`) and runs the
//!   self-test; only then can it enter a [`Chain`].
//! - [`PolicySet`] holds the global chain and the tenants' chains; [`PolicySet::evaluate`] runs the
//!   global chain then the tenant's and returns a [`Verdict`]. Every failure is a block whose
//!   [`PolicyCode`] names it (`POLICY_TRAP`, `POLICY_TIMEOUT`, …).
//! - [`PolicySet::deploy`] / [`PolicySet::install`] swap a chain atomically (hot reload).

mod chain;
mod host;
mod metrics;
mod policy;
mod verdict;

pub use arqon_policy_sdk::abi::Input as PolicyInput;
pub use arqon_policy_sdk::{Decision, abi};
pub use chain::{
    Chain, ChainEntry, DeployError, ModuleListing, ModuleSource, PolicySet, Scope, ScopeListing,
};
pub use host::{HostConfig, HostError, PolicyHost};
pub use metrics::{
    LATENCY_BOUNDS_US, LATENCY_METRIC, MetricsSnapshot, PolicyMetrics, VERDICTS_METRIC,
    VerdictCount,
};
pub use policy::{PROBE, Policy, sha256_hex};
pub use verdict::LoadError;
pub use verdict::{
    AbiViolation, BLOCKED_MESSAGE, Block, BlockReason, MemoryFailure, PolicyCode, PolicyFailure,
    Verdict,
};

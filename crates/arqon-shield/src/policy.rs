//! The Wasm policy chain (`arqon-policy`) behind the Shield's [`crate::hooks::PolicyHook`], loaded from `[policy]`
//! and hot-reloaded through the admin API (`admin_policy.rs`).
//!
//! Loading fails closed: a module that cannot be read or compiled stays in its chain as an entry
//! that blocks every message with `POLICY_LOAD`, so a tenant is never left unfiltered. A deploy
//! compiles, ABI-checks and self-tests the new chain first and swaps it in atomically; a refused
//! deploy changes nothing.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arqon_config::{Config, PolicyConfig};
use arqon_core::session::{ErrorCode, PolicyVerdict};
use arqon_policy::{
    BLOCKED_MESSAGE, Chain, DeployError, HostConfig, ModuleListing, ModuleSource, PolicyCode,
    PolicyHost, PolicyInput, PolicySet, Scope, ScopeListing, Verdict,
};
use arqon_proto::names::{RoomName, TenantId, UserId};
use arqon_proto::v1;
use bytes::Bytes;

use crate::error::ShieldError;

/// The metric counting deploys by outcome (`ok`, or the refusal's reason: `load`, `abi`, …).
pub const DEPLOYS_METRIC: &str = "arqonbus.policy.deploys";

/// Every `arqonbus.policy.deploys` outcome: success, no engine, then each refusal reason.
pub const DEPLOY_OUTCOMES: [&str; 8] = [
    "ok", "host", "blocked", "trap", "timeout", "memory", "abi", "load",
];

/// A tenant-aware policy chain: the global chain, then the tenant's; deployable at run time.
pub struct WasmPolicy {
    set: Arc<PolicySet>,
    host_config: HostConfig,
    /// The engine new chains compile on; made on the first deploy when the node started without one.
    host: Mutex<Option<PolicyHost>>,
    /// False while no chain was ever installed: publishes skip the (empty) chains entirely.
    armed: AtomicBool,
    /// Counts per [`DEPLOY_OUTCOMES`] entry.
    deploys: [AtomicU64; DEPLOY_OUTCOMES.len()],
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy").finish_non_exhaustive()
    }
}

/// A deploy that did not happen; the chain in force is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum PolicyDeployError {
    /// The wasmtime engine could not be started.
    #[error("policy host unavailable: {0}")]
    Host(String),
    /// A module was refused (it did not compile, failed its ABI check or its self-test).
    #[error(transparent)]
    Refused(#[from] DeployError),
}

impl PolicyDeployError {
    /// The refusal's error code name (`POLICY_LOAD`, `POLICY_ABI`, …; `POLICY_HOST` without engine).
    pub fn code_name(&self) -> &'static str {
        match self {
            Self::Host(_) => "POLICY_HOST",
            Self::Refused(refused) => refused.error.code_name(),
        }
    }

    /// The `arqonbus.policy.deploys` outcome label.
    fn outcome(&self) -> &'static str {
        match self {
            Self::Host(_) => "host",
            Self::Refused(refused) => refused.error.code().reason(),
        }
    }
}

fn host_config(config: &PolicyConfig) -> HostConfig {
    HostConfig {
        time_budget: config.time_budget.get(),
        memory_limit: config.memory_limit.as_usize(),
        ..HostConfig::default()
    }
}

impl WasmPolicy {
    /// Wraps a policy set (for example one the governance plane hot-reloads); deploys compile on
    /// a default host made on first use.
    pub fn new(set: Arc<PolicySet>) -> Self {
        Self::build(set, HostConfig::default(), None, true)
    }

    /// Wraps a policy set whose deploys compile on `host`.
    pub fn with_host(set: Arc<PolicySet>, host: PolicyHost) -> Self {
        let config = host.config().clone();
        Self::build(set, config, Some(host), true)
    }

    fn build(
        set: Arc<PolicySet>,
        host_config: HostConfig,
        host: Option<PolicyHost>,
        armed: bool,
    ) -> Self {
        Self {
            set,
            host_config,
            host: Mutex::new(host),
            armed: AtomicBool::new(armed),
            deploys: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    /// Builds the chains `[policy]` names, or `None` when it names none.
    pub fn from_config(config: &PolicyConfig) -> Result<Option<Self>, ShieldError> {
        if config.global.is_empty() && config.tenants.values().all(|c| c.chain.is_empty()) {
            return Ok(None);
        }
        let host = PolicyHost::new(host_config(config))
            .map_err(|e| ShieldError::Config(format!("policy host: {e}")))?;
        let set = PolicySet::new();
        set.install(Scope::Global, load_chain(&host, &config.global));
        for (tenant, chain) in &config.tenants {
            set.install(
                Scope::Tenant(tenant.clone()),
                load_chain(&host, &chain.chain),
            );
        }
        Ok(Some(Self::with_host(Arc::new(set), host)))
    }

    /// The policy a node runs: the chains of `[policy]`; with none but the admin API enabled, empty
    /// chains that deploys can fill (no engine is started until the first deploy, and publishes
    /// skip the chains until then); otherwise `None`.
    pub fn for_node(config: &Config) -> Result<Option<Self>, ShieldError> {
        if let Some(policy) = Self::from_config(&config.policy)? {
            return Ok(Some(policy));
        }
        Ok(config.admin.enabled.then(|| {
            Self::build(
                Arc::new(PolicySet::new()),
                host_config(&config.policy),
                None,
                false,
            )
        }))
    }

    /// The chains in force.
    pub fn set(&self) -> &Arc<PolicySet> {
        &self.set
    }

    fn host(&self) -> Result<PolicyHost, PolicyDeployError> {
        let mut slot = self.host.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(host) = slot.as_ref() {
            return Ok(host.clone());
        }
        let host = PolicyHost::new(self.host_config.clone())
            .map_err(|e| PolicyDeployError::Host(e.to_string()))?;
        *slot = Some(host.clone());
        Ok(host)
    }

    /// Compiles, ABI-checks and self-tests `modules`, then makes them `scope`'s chain in one atomic
    /// swap (evaluations already running finish on the old chain). A refusal changes nothing.
    /// Blocking: compiling takes milliseconds; call it off the async runtime.
    pub fn deploy(
        &self,
        scope: Scope,
        modules: &[ModuleSource<'_>],
    ) -> Result<Vec<ModuleListing>, PolicyDeployError> {
        let result = self.host().and_then(|host| {
            let chain = Chain::compile(&host, modules)?;
            let listing = chain.listing();
            // Armed before the swap: a publish that sees the new chain also evaluates it.
            self.armed.store(true, Ordering::SeqCst);
            self.set.install(scope, chain);
            Ok(listing)
        });
        let outcome = result
            .as_ref()
            .map_or_else(PolicyDeployError::outcome, |_| "ok");
        if let Some(index) = DEPLOY_OUTCOMES.iter().position(|o| *o == outcome) {
            self.deploys[index].fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// What is in force: the global chain, then each tenant's.
    pub fn list(&self) -> Vec<ScopeListing> {
        self.set.list()
    }

    /// `arqonbus.policy.deploys{outcome}`: deploys with this outcome so far.
    pub fn deploys(&self, outcome: &str) -> u64 {
        DEPLOY_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .map_or(0, |index| self.deploys[index].load(Ordering::Relaxed))
    }

    /// The Prometheus text of the deploy counter.
    pub(crate) fn render_metrics(&self) -> String {
        let name = DEPLOYS_METRIC.replace('.', "_");
        let mut out = format!(
            "# HELP {name} policy deploys through the admin API, by outcome\n# TYPE {name} counter\n"
        );
        for (outcome, count) in DEPLOY_OUTCOMES.iter().zip(&self.deploys) {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        out
    }
}

fn load_chain(host: &PolicyHost, paths: &[PathBuf]) -> Chain {
    let files: Vec<(String, Vec<u8>)> = paths
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).unwrap_or_else(|error| {
                tracing::error!(path = %path.display(), %error, "policy module unreadable; it blocks everything");
                Vec::new()
            });
            (path.display().to_string(), bytes)
        })
        .collect();
    let sources: Vec<ModuleSource<'_>> = files
        .iter()
        .map(|(name, bytes)| ModuleSource { name, bytes })
        .collect();
    Chain::fail_closed_from(host, &sources)
}

fn session_code(code: PolicyCode) -> ErrorCode {
    match code {
        PolicyCode::Blocked => ErrorCode::PolicyBlocked,
        PolicyCode::Trap => ErrorCode::PolicyTrap,
        PolicyCode::Timeout => ErrorCode::PolicyTimeout,
        PolicyCode::Memory => ErrorCode::PolicyMemory,
        PolicyCode::Abi => ErrorCode::PolicyAbi,
        PolicyCode::Load => ErrorCode::PolicyLoad,
    }
}

/// The text a client sees in an `Error` with a policy code: always [`BLOCKED_MESSAGE`] (the
/// module's own reason stays on the server); `None` for other codes.
pub(crate) fn client_message(code: v1::ErrorCode) -> Option<&'static str> {
    matches!(
        code,
        v1::ErrorCode::PolicyBlocked
            | v1::ErrorCode::PolicyTrap
            | v1::ErrorCode::PolicyTimeout
            | v1::ErrorCode::PolicyMemory
            | v1::ErrorCode::PolicyAbi
            | v1::ErrorCode::PolicyLoad
    )
    .then_some(BLOCKED_MESSAGE)
}

impl WasmPolicy {
    /// The verdict of the chains on one publish (the [`crate::hooks::PolicyHook`] the node runs).
    pub fn check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        room: &RoomName,
        payload: &Bytes,
    ) -> PolicyVerdict {
        if !self.armed.load(Ordering::SeqCst) {
            return PolicyVerdict::Allow;
        }
        let input = PolicyInput {
            tenant: tenant.as_str(),
            room: room.as_str(),
            sender: user.as_str(),
            headers: &[],
            payload,
        };
        match self.set.evaluate(&input) {
            Verdict::Allow => PolicyVerdict::Allow,
            Verdict::Block(block) => PolicyVerdict::Block(session_code(block.code())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-POLICY-17
    #[test]
    fn every_policy_code_shows_clients_only_the_blocked_message() {
        for code in [
            v1::ErrorCode::PolicyBlocked,
            v1::ErrorCode::PolicyTrap,
            v1::ErrorCode::PolicyTimeout,
            v1::ErrorCode::PolicyMemory,
            v1::ErrorCode::PolicyAbi,
            v1::ErrorCode::PolicyLoad,
        ] {
            assert_eq!(client_message(code), Some("Message blocked by policy"));
        }
        assert_eq!(client_message(v1::ErrorCode::RateLimited), None);
    }
}

//! The Wasm policy chain (`arqon-policy`) behind the Shield's [`PolicyHook`], loaded from `[policy]`.
//!
//! Loading fails closed: a module that cannot be read or compiled stays in its chain as an entry
//! that blocks every message with `POLICY_LOAD`, so a tenant is never left unfiltered.

use std::path::PathBuf;
use std::sync::Arc;

use arqon_config::PolicyConfig;
use arqon_core::session::{ErrorCode, PolicyVerdict};
use arqon_policy::{
    Chain, HostConfig, ModuleSource, PolicyCode, PolicyHost, PolicyInput, PolicySet, Scope, Verdict,
};
use arqon_proto::names::{RoomName, TenantId, UserId};
use bytes::Bytes;

use crate::error::ShieldError;
use crate::hooks::PolicyHook;

/// A tenant-aware policy chain: the global chain, then the tenant's.
pub struct WasmPolicy {
    set: Arc<PolicySet>,
}

impl std::fmt::Debug for WasmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmPolicy").finish_non_exhaustive()
    }
}

impl WasmPolicy {
    /// Wraps a policy set (for example one the governance plane hot-reloads).
    pub fn new(set: Arc<PolicySet>) -> Self {
        Self { set }
    }

    /// Builds the chains `[policy]` names, or `None` when it names none.
    pub fn from_config(config: &PolicyConfig) -> Result<Option<Self>, ShieldError> {
        if config.global.is_empty() && config.tenants.values().all(|c| c.chain.is_empty()) {
            return Ok(None);
        }
        let host = PolicyHost::new(HostConfig {
            time_budget: config.time_budget.get(),
            memory_limit: config.memory_limit.as_usize(),
            ..HostConfig::default()
        })
        .map_err(|e| ShieldError::Config(format!("policy host: {e}")))?;
        let set = PolicySet::new();
        set.install(Scope::Global, load_chain(&host, &config.global));
        for (tenant, chain) in &config.tenants {
            set.install(
                Scope::Tenant(tenant.clone()),
                load_chain(&host, &chain.chain),
            );
        }
        Ok(Some(Self::new(Arc::new(set))))
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

impl PolicyHook for WasmPolicy {
    fn check(
        &self,
        tenant: &TenantId,
        user: &UserId,
        room: &RoomName,
        payload: &Bytes,
    ) -> PolicyVerdict {
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

//! Ordered policy chains, and the set of chains in force (global plus per tenant) with atomic hot reload.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use arqon_policy_sdk::Decision;
use arqon_policy_sdk::abi::Input;

use crate::host::PolicyHost;
use crate::metrics::{MetricsSnapshot, PolicyMetrics};
use crate::policy::{Policy, sha256_hex};
use crate::verdict::LoadError;
use crate::verdict::{Block, BlockReason, PolicyFailure, Verdict};

/// One link of a chain.
#[derive(Debug)]
pub enum ChainEntry {
    /// A loaded policy.
    Loaded(Arc<Policy>),
    /// A module that failed to load, kept so that it blocks every message (fail closed).
    Unloadable {
        /// The module's name.
        name: Arc<str>,
        /// The hex SHA-256 of its bytes.
        sha256: String,
        /// Why it did not load.
        error: Arc<LoadError>,
    },
}

/// An ordered list of policies; the first block wins.
#[derive(Debug, Default)]
pub struct Chain {
    entries: Vec<ChainEntry>,
    generation: u64,
    /// Messages this chain blocked since it was put in force (the admin console's block count).
    blocked: AtomicU64,
}

/// A module to put into a chain: its name and its bytes (binary Wasm or WAT text).
#[derive(Clone, Copy, Debug)]
pub struct ModuleSource<'a> {
    /// The name shown by listings and verdicts.
    pub name: &'a str,
    /// The module's bytes.
    pub bytes: &'a [u8],
}

/// A deploy refused because one module did not load.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("module {index} ({name}) refused: {error}")]
pub struct DeployError {
    /// Position of the module in the deploy.
    pub index: usize,
    /// Its name.
    pub name: String,
    /// Why.
    pub error: LoadError,
}

/// What a listing says about one module.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModuleListing {
    /// The module's name.
    pub name: String,
    /// The hex SHA-256 of its bytes.
    pub sha256: String,
    /// `None` when loaded; the code name it blocks with when it is a fail-closed placeholder.
    pub failing_with: Option<&'static str>,
}

impl Chain {
    /// A chain of loaded policies, in order.
    pub fn new(policies: impl IntoIterator<Item = Policy>) -> Chain {
        Chain {
            entries: policies
                .into_iter()
                .map(|policy| ChainEntry::Loaded(Arc::new(policy)))
                .collect(),
            generation: 0,
            blocked: AtomicU64::new(0),
        }
    }

    /// Compiles every module; refuses the whole chain if any module does not load.
    pub fn compile(host: &PolicyHost, modules: &[ModuleSource<'_>]) -> Result<Chain, DeployError> {
        let policies = modules
            .iter()
            .enumerate()
            .map(|(index, source)| {
                Policy::compile(host, source.name, source.bytes).map_err(|error| DeployError {
                    index,
                    name: source.name.into(),
                    error,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Chain::new(policies))
    }

    /// Compiles every module; one that does not load stays in the chain as an entry that blocks
    /// every message with its load error's code. For startup, where refusing is not an option and
    /// an unfiltered tenant is not acceptable.
    pub fn fail_closed_from(host: &PolicyHost, modules: &[ModuleSource<'_>]) -> Chain {
        Chain {
            entries: modules
                .iter()
                .map(
                    |source| match Policy::compile(host, source.name, source.bytes) {
                        Ok(policy) => ChainEntry::Loaded(Arc::new(policy)),
                        Err(error) => ChainEntry::Unloadable {
                            name: Arc::from(source.name),
                            sha256: sha256_hex(source.bytes),
                            error: Arc::new(error),
                        },
                    },
                )
                .collect(),
            generation: 0,
            blocked: AtomicU64::new(0),
        }
    }

    /// Runs the policies in order; the first that does not allow decides. An empty chain allows.
    /// A block is counted on the chain ([`Chain::blocked`]).
    pub fn evaluate(&self, input: &Input<'_>) -> Verdict {
        let verdict = self.judge(input);
        if !verdict.is_allow() {
            self.blocked.fetch_add(1, Ordering::Relaxed);
        }
        verdict
    }

    fn judge(&self, input: &Input<'_>) -> Verdict {
        self.entries
            .iter()
            .find_map(|entry| {
                let (policy, reason) = match entry {
                    ChainEntry::Loaded(policy) => match policy.evaluate(input) {
                        Ok(Decision::Allow) => return None,
                        Ok(Decision::Block(reason)) => {
                            (policy.shared_name(), BlockReason::Policy(reason))
                        }
                        Err(failure) => (policy.shared_name(), BlockReason::Failure(failure)),
                    },
                    ChainEntry::Unloadable { name, error, .. } => (
                        Arc::clone(name),
                        BlockReason::Failure(PolicyFailure::NotLoaded(Arc::clone(error))),
                    ),
                };
                Some(Verdict::Block(Block { policy, reason }))
            })
            .unwrap_or(Verdict::Allow)
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[ChainEntry] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the chain is empty (and so allows everything).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Messages this chain blocked since it was built.
    pub fn blocked(&self) -> u64 {
        self.blocked.load(Ordering::Relaxed)
    }

    /// The install counter of the set this chain was installed in (0 if never installed).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Each module's name, hash and state, in order.
    pub fn listing(&self) -> Vec<ModuleListing> {
        self.entries
            .iter()
            .map(|entry| match entry {
                ChainEntry::Loaded(policy) => ModuleListing {
                    name: policy.name().into(),
                    sha256: policy.sha256().into(),
                    failing_with: None,
                },
                ChainEntry::Unloadable {
                    name,
                    sha256,
                    error,
                } => ModuleListing {
                    name: name.to_string(),
                    sha256: sha256.clone(),
                    failing_with: Some(error.code_name()),
                },
            })
            .collect()
    }
}

/// Which chain: the global one, or a tenant's.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Runs for every tenant, first.
    Global,
    /// Runs for this tenant only, after the global chain.
    Tenant(String),
}

/// One chain in force, as `list()` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScopeListing {
    /// Whose chain.
    pub scope: Scope,
    /// The install counter when it was put in force.
    pub generation: u64,
    /// Its modules, in order.
    pub modules: Vec<ModuleListing>,
}

/// The chains in force: a global chain plus one per tenant, each swappable atomically.
///
/// An evaluation takes a snapshot (`Arc`) of the global and the tenant chain when it starts and
/// finishes on them; an install replaces a chain in one write, so every evaluation sees a complete
/// old or a complete new chain.
#[derive(Debug, Default)]
pub struct PolicySet {
    global: RwLock<Arc<Chain>>,
    tenants: RwLock<BTreeMap<String, Arc<Chain>>>,
    installs: AtomicU64,
    metrics: PolicyMetrics,
}

impl PolicySet {
    /// A set with empty chains (everything allowed until policies are installed).
    pub fn new() -> PolicySet {
        PolicySet::default()
    }

    /// Judges one message: the global chain, then the tenant's; counts the verdict and latency.
    pub fn evaluate(&self, input: &Input<'_>) -> Verdict {
        let started = Instant::now();
        let (global, tenant) = self.snapshot(input.tenant);
        let verdict = match global.evaluate(input) {
            Verdict::Allow => tenant.map_or(Verdict::Allow, |chain| chain.evaluate(input)),
            block @ Verdict::Block(_) => block,
        };
        self.metrics.record(&verdict, started.elapsed());
        verdict
    }

    /// The chains in force for `tenant` right now: the global chain and the tenant's, if any.
    pub fn snapshot(&self, tenant: &str) -> (Arc<Chain>, Option<Arc<Chain>>) {
        let global = Arc::clone(&self.global.read().unwrap_or_else(PoisonError::into_inner));
        let tenant = self
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tenant)
            .cloned();
        (global, tenant)
    }

    /// Puts `chain` in force for `scope` in one atomic swap; returns the chain it replaced.
    /// Evaluations already running finish on the old chain.
    pub fn install(&self, scope: Scope, mut chain: Chain) -> Option<Arc<Chain>> {
        chain.generation = self.installs.fetch_add(1, Ordering::Relaxed) + 1;
        let chain = Arc::new(chain);
        match scope {
            Scope::Global => Some(std::mem::replace(
                &mut *self.global.write().unwrap_or_else(PoisonError::into_inner),
                chain,
            )),
            Scope::Tenant(tenant) => self
                .tenants
                .write()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(tenant, chain),
        }
    }

    /// Compiles, checks and self-tests every module, then installs them as `scope`'s chain.
    /// If any module is refused nothing changes and the old chain stays in force.
    pub fn deploy(
        &self,
        host: &PolicyHost,
        scope: Scope,
        modules: &[ModuleSource<'_>],
    ) -> Result<Vec<ModuleListing>, DeployError> {
        let chain = Chain::compile(host, modules)?;
        let listing = chain.listing();
        self.install(scope, chain);
        Ok(listing)
    }

    /// Removes a tenant's chain (the global chain still applies); returns it.
    pub fn remove_tenant(&self, tenant: &str) -> Option<Arc<Chain>> {
        self.tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(tenant)
    }

    /// What is in force: the global chain, then each tenant's in tenant order.
    pub fn list(&self) -> Vec<ScopeListing> {
        let listing = |scope: Scope, chain: &Chain| ScopeListing {
            scope,
            generation: chain.generation(),
            modules: chain.listing(),
        };
        let global = Arc::clone(&self.global.read().unwrap_or_else(PoisonError::into_inner));
        let tenants = self
            .tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        std::iter::once(listing(Scope::Global, &global))
            .chain(
                tenants
                    .into_iter()
                    .map(|(tenant, chain)| listing(Scope::Tenant(tenant), &chain)),
            )
            .collect()
    }

    /// The counters (`arqonbus.policy.verdicts`, `arqonbus.policy.eval_latency_us`).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }
}

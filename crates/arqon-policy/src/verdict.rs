//! Verdicts and failures: what a chain decided about a message, why a module was refused, and the
//! stable code name of every block.
//!
//! Every failure is a block (fail closed). The code names match the `ErrorCode` values of the
//! `arqon.v1` contract without depending on `arqon-proto`: `POLICY_BLOCKED`, `POLICY_TRAP`,
//! `POLICY_TIMEOUT`, `POLICY_MEMORY`, `POLICY_ABI`, `POLICY_LOAD`.

use std::sync::Arc;

use arqon_policy_sdk::abi::ABI_VERSION;

/// The only text a sender ever sees for a blocked message.
pub const BLOCKED_MESSAGE: &str = "Message blocked by policy";

/// What a chain decided about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Route the message.
    Allow,
    /// Route it to nobody.
    Block(Block),
}

/// Which policy blocked a message, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// The blocking policy's name.
    pub policy: Arc<str>,
    /// Why.
    pub reason: BlockReason,
}

/// Why a message was blocked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockReason {
    /// The policy judged the message and blocked it, with its own reason (for operators, not senders).
    Policy(String),
    /// The policy failed; failing closed.
    Failure(PolicyFailure),
}

/// How a policy failed while judging a message. Each is a block.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyFailure {
    /// The module trapped.
    #[error("policy trapped: {0}")]
    Trap(String),
    /// The module ran past the time budget (epoch interruption).
    #[error("policy ran past its time budget")]
    Timeout,
    /// A memory or capacity limit was hit.
    #[error("policy hit a memory limit: {0}")]
    Memory(#[from] MemoryFailure),
    /// The module broke the ABI while running.
    #[error("policy broke the ABI: {0}")]
    Abi(#[from] AbiViolation),
    /// The module could not be instantiated for this message.
    #[error("policy could not be instantiated: {0}")]
    Instantiate(String),
    /// The chain entry is a module that never loaded (a fail-closed placeholder).
    #[error("policy is not loaded: {0}")]
    NotLoaded(Arc<LoadError>),
}

/// The memory or capacity limit a policy hit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MemoryFailure {
    /// The module tried to grow its memory past the limit.
    #[error("memory would grow to {desired} bytes, limit {limit}")]
    LimitExceeded {
        /// The size asked for.
        desired: usize,
        /// The limit.
        limit: usize,
    },
    /// The encoded message is larger than the host's input limit.
    #[error("input is {len} bytes, limit {limit}")]
    InputTooLarge {
        /// Encoded length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// `arqon_alloc` returned 0.
    #[error("arqon_alloc returned 0")]
    AllocFailed,
    /// Every instance slot of the pool is in use.
    #[error("instance pool exhausted")]
    PoolExhausted,
}

/// How a running module broke the ABI.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AbiViolation {
    /// `arqon_alloc` returned a buffer outside memory.
    #[error("arqon_alloc returned a buffer outside memory")]
    AllocOutOfBounds,
    /// `arqon_evaluate` returned something that is neither allow nor block.
    #[error("bad verdict: {0}")]
    BadVerdict(#[from] arqon_policy_sdk::abi::VerdictError),
    /// The block reason lies outside memory.
    #[error("block reason lies outside memory")]
    ReasonOutOfBounds,
    /// The block reason is not UTF-8.
    #[error("block reason is not UTF-8")]
    ReasonNotUtf8,
}

/// The error code of a block: one per failure mode, plus `Blocked` for a real block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyCode {
    /// The policy blocked the message.
    Blocked,
    /// The policy trapped.
    Trap,
    /// The policy ran past its time budget.
    Timeout,
    /// The policy hit a memory or capacity limit.
    Memory,
    /// The policy broke the ABI.
    Abi,
    /// The policy could not be loaded or instantiated.
    Load,
}

impl PolicyCode {
    /// Every code, in a fixed order (metrics index by it).
    pub const ALL: [PolicyCode; 6] = [
        PolicyCode::Blocked,
        PolicyCode::Trap,
        PolicyCode::Timeout,
        PolicyCode::Memory,
        PolicyCode::Abi,
        PolicyCode::Load,
    ];

    /// The stable error code name (an `arqon.v1` `ErrorCode` without its `ERROR_CODE_` prefix).
    pub fn name(self) -> &'static str {
        match self {
            PolicyCode::Blocked => "POLICY_BLOCKED",
            PolicyCode::Trap => "POLICY_TRAP",
            PolicyCode::Timeout => "POLICY_TIMEOUT",
            PolicyCode::Memory => "POLICY_MEMORY",
            PolicyCode::Abi => "POLICY_ABI",
            PolicyCode::Load => "POLICY_LOAD",
        }
    }

    /// The short reason label used by metrics.
    pub fn reason(self) -> &'static str {
        match self {
            PolicyCode::Blocked => "blocked",
            PolicyCode::Trap => "trap",
            PolicyCode::Timeout => "timeout",
            PolicyCode::Memory => "memory",
            PolicyCode::Abi => "abi",
            PolicyCode::Load => "load",
        }
    }
}

impl PolicyFailure {
    /// The error code of this failure.
    pub fn code(&self) -> PolicyCode {
        match self {
            PolicyFailure::Trap(_) => PolicyCode::Trap,
            PolicyFailure::Timeout => PolicyCode::Timeout,
            PolicyFailure::Memory(_) => PolicyCode::Memory,
            PolicyFailure::Abi(_) => PolicyCode::Abi,
            PolicyFailure::Instantiate(_) => PolicyCode::Load,
            PolicyFailure::NotLoaded(error) => error.code(),
        }
    }

    /// The stable error code name, for example `POLICY_TRAP`.
    pub fn code_name(&self) -> &'static str {
        self.code().name()
    }
}

impl BlockReason {
    /// The error code: `Blocked` for a real block, else the failure's.
    pub fn code(&self) -> PolicyCode {
        match self {
            BlockReason::Policy(_) => PolicyCode::Blocked,
            BlockReason::Failure(failure) => failure.code(),
        }
    }
}

impl Block {
    /// The error code of this block.
    pub fn code(&self) -> PolicyCode {
        self.reason.code()
    }

    /// The stable error code name, for example `POLICY_TIMEOUT`.
    pub fn code_name(&self) -> &'static str {
        self.code().name()
    }

    /// The short reason label, for example `timeout`.
    pub fn reason(&self) -> &'static str {
        self.code().reason()
    }
}

impl Verdict {
    /// Whether the message may be routed.
    pub fn is_allow(&self) -> bool {
        matches!(self, Verdict::Allow)
    }

    /// The error code, `None` on allow.
    pub fn code(&self) -> Option<PolicyCode> {
        match self {
            Verdict::Allow => None,
            Verdict::Block(block) => Some(block.code()),
        }
    }

    /// The error code name to send back, `None` on allow.
    pub fn code_name(&self) -> Option<&'static str> {
        self.code().map(PolicyCode::name)
    }
}

/// Why a module was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    /// The bytes are neither a valid Wasm module nor WAT text, or cannot be linked.
    #[error("module does not compile: {0}")]
    Compile(String),
    /// The module imports something; policies may import nothing.
    #[error("module imports {module}::{name}; policies may import nothing")]
    Import {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// A required export is absent.
    #[error("missing export `{0}`")]
    MissingExport(&'static str),
    /// A required export has the wrong type.
    #[error("export `{name}` is {found}, expected {expected}")]
    WrongExportType {
        /// The export.
        name: &'static str,
        /// The type the ABI requires.
        expected: &'static str,
        /// The type found.
        found: String,
    },
    /// `arqon_policy_abi_version` returned another version.
    #[error("module speaks ABI version {found}, the host speaks {ABI_VERSION}")]
    AbiVersion {
        /// The version the module returned.
        found: i32,
    },
    /// The module did not allow the self-test probe.
    #[error("self-test failed: {0:?}")]
    SelfTest(BlockReason),
}

impl LoadError {
    /// The error code of this refusal: `POLICY_ABI` for ABI breaks, the failure's code when the
    /// self-test failed, else `POLICY_LOAD`.
    pub fn code(&self) -> PolicyCode {
        match self {
            LoadError::Import { .. }
            | LoadError::MissingExport(_)
            | LoadError::WrongExportType { .. }
            | LoadError::AbiVersion { .. } => PolicyCode::Abi,
            LoadError::SelfTest(BlockReason::Failure(failure)) => failure.code(),
            LoadError::Compile(_) | LoadError::SelfTest(BlockReason::Policy(_)) => PolicyCode::Load,
        }
    }

    /// The stable error code name.
    pub fn code_name(&self) -> &'static str {
        self.code().name()
    }
}

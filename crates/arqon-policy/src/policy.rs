//! One compiled policy module: ABI check, self-test, and per-message evaluation on a fresh pooled instance.

use std::fmt;
use std::str;
use std::sync::Arc;

use arqon_policy_sdk::Decision;
use arqon_policy_sdk::abi::{
    ABI_VERSION, EXPORT_ABI_VERSION, EXPORT_ALLOC, EXPORT_EVALUATE, EXPORT_MEMORY, Input, Packed,
};
use sha2::{Digest, Sha256};
use wasmtime::{
    Extern, ExternType, Instance, InstancePre, Linker, Memory, Module, ModuleExport,
    PoolConcurrencyLimitError, Store, Trap, TypedFunc, WasmParams, WasmResults,
};

use crate::host::{PolicyHost, Shared, StoreLimits};
use crate::verdict::{AbiViolation, BlockReason, LoadError, MemoryFailure, PolicyFailure};

/// The message every module must allow before it may enter a chain.
pub const PROBE: Input<'static> = Input {
    tenant: "arqon-selftest",
    room: "selftest",
    sender: "arqon-policy",
    headers: &[("message_id", "selftest")],
    payload: b"arqon policy self-test: hello",
};

/// A compiled, checked and self-tested policy module.
pub struct Policy {
    name: Arc<str>,
    sha256: String,
    pre: InstancePre<StoreLimits>,
    exports: Exports,
    host: Arc<Shared>,
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Policy")
            .field("name", &self.name)
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The hex SHA-256 of a module's bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

struct Exports {
    memory: ModuleExport,
    version: ModuleExport,
    alloc: ModuleExport,
    evaluate: ModuleExport,
}

impl Exports {
    fn check(module: &Module) -> Result<Self, LoadError> {
        Ok(Exports {
            memory: export(module, EXPORT_MEMORY, "memory32")?,
            version: export(module, EXPORT_ABI_VERSION, "() -> i32")?,
            alloc: export(module, EXPORT_ALLOC, "(i32) -> i32")?,
            evaluate: export(module, EXPORT_EVALUATE, "(i32, i32) -> i64")?,
        })
    }
}

fn export(
    module: &Module,
    name: &'static str,
    expected: &'static str,
) -> Result<ModuleExport, LoadError> {
    let ty = module
        .get_export(name)
        .ok_or(LoadError::MissingExport(name))?;
    let found = describe(&ty);
    if found != expected {
        return Err(LoadError::WrongExportType {
            name,
            expected,
            found,
        });
    }
    module
        .get_export_index(name)
        .ok_or(LoadError::MissingExport(name))
}

fn describe(ty: &ExternType) -> String {
    let list = |types: Vec<String>| types.join(", ");
    match ty {
        ExternType::Func(func) => {
            let params = list(func.params().map(|t| t.to_string()).collect());
            let results: Vec<String> = func.results().map(|t| t.to_string()).collect();
            match results.as_slice() {
                [one] => format!("({params}) -> {one}"),
                _ => format!("({params}) -> ({})", list(results)),
            }
        }
        ExternType::Memory(memory) if !memory.is_64() && !memory.is_shared() => "memory32".into(),
        ExternType::Memory(_) => "a 64-bit or shared memory".into(),
        ExternType::Global(_) => "a global".into(),
        ExternType::Table(_) => "a table".into(),
        ExternType::Tag(_) => "a tag".into(),
    }
}

type Run<T> = Result<T, PolicyFailure>;

impl Policy {
    /// Compiles `bytes` (a binary module or WAT text), checks the ABI and runs the self-test
    /// ([`PROBE`] must be allowed). Only a module that passes all three becomes a `Policy`.
    pub fn compile(host: &PolicyHost, name: &str, bytes: &[u8]) -> Result<Policy, LoadError> {
        let engine = &host.shared.engine;
        let module =
            Module::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        if let Some(import) = module.imports().next() {
            return Err(LoadError::Import {
                module: import.module().into(),
                name: import.name().into(),
            });
        }
        let exports = Exports::check(&module)?;
        let pre = Linker::new(engine)
            .instantiate_pre(&module)
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?;
        let policy = Policy {
            name: Arc::from(name),
            sha256: sha256_hex(bytes),
            pre,
            exports,
            host: Arc::clone(&host.shared),
        };
        let found = policy
            .abi_version()
            .map_err(|failure| LoadError::SelfTest(BlockReason::Failure(failure)))?;
        if found != ABI_VERSION {
            return Err(LoadError::AbiVersion { found });
        }
        match policy.evaluate(&PROBE) {
            Ok(Decision::Allow) => Ok(policy),
            Ok(Decision::Block(reason)) => Err(LoadError::SelfTest(BlockReason::Policy(reason))),
            Err(failure) => Err(LoadError::SelfTest(BlockReason::Failure(failure))),
        }
    }

    /// The name given at compile time.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn shared_name(&self) -> Arc<str> {
        Arc::clone(&self.name)
    }

    /// The hex SHA-256 of the module's bytes.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Judges one message on a fresh instance. Every failure is an `Err` (the caller blocks).
    pub fn evaluate(&self, input: &Input<'_>) -> Run<Decision> {
        let limit = self.host.config.max_input;
        let len = input.encoded_len().unwrap_or(usize::MAX);
        let Some(len32) = i32::try_from(len).ok().filter(|_| len <= limit) else {
            return Err(MemoryFailure::InputTooLarge { len, limit }.into());
        };
        let mut store = self.store();
        let instance = self.instantiate(&mut store)?;
        let memory = self.memory(&mut store, &instance)?;
        let alloc = typed::<i32, i32>(&mut store, &instance, &self.exports.alloc)?;
        let evaluate = typed::<(i32, i32), i64>(&mut store, &instance, &self.exports.evaluate)?;

        let ptr = call(&mut store, &alloc, len32)?;
        if ptr == 0 {
            return Err(MemoryFailure::AllocFailed.into());
        }
        let buffer = region(ptr, len)
            .and_then(|range| memory.data_mut(&mut store).get_mut(range))
            .ok_or(AbiViolation::AllocOutOfBounds)?;
        input
            .encode_into(buffer)
            .map_err(|_| AbiViolation::AllocOutOfBounds)?;

        let packed = call(&mut store, &evaluate, (ptr, len32))?;
        match Packed::unpack(packed).map_err(AbiViolation::from)? {
            Packed::Allow => Ok(Decision::Allow),
            Packed::Block {
                reason_ptr,
                reason_len,
            } => {
                let bytes = region(reason_ptr.cast_signed(), usize::from(reason_len))
                    .and_then(|range| memory.data(&store).get(range))
                    .ok_or(AbiViolation::ReasonOutOfBounds)?;
                let reason = str::from_utf8(bytes).map_err(|_| AbiViolation::ReasonNotUtf8)?;
                Ok(Decision::Block(reason.to_owned()))
            }
        }
    }

    fn abi_version(&self) -> Run<i32> {
        let mut store = self.store();
        let instance = self.instantiate(&mut store)?;
        let version = typed::<(), i32>(&mut store, &instance, &self.exports.version)?;
        call(&mut store, &version, ())
    }

    fn store(&self) -> Store<StoreLimits> {
        let mut store = Store::new(
            &self.host.engine,
            StoreLimits::new(self.host.config.memory_limit),
        );
        store.limiter(|limits| limits);
        store.set_epoch_deadline(self.host.deadline_ticks);
        store
    }

    fn instantiate(&self, store: &mut Store<StoreLimits>) -> Run<Instance> {
        self.pre.instantiate(&mut *store).map_err(|error| {
            if error.is::<PoolConcurrencyLimitError>() {
                MemoryFailure::PoolExhausted.into()
            } else {
                failure(store.data(), &error, || {
                    PolicyFailure::Instantiate(format!("{error:#}"))
                })
            }
        })
    }

    fn memory(&self, store: &mut Store<StoreLimits>, instance: &Instance) -> Run<Memory> {
        instance
            .get_module_export(&mut *store, &self.exports.memory)
            .and_then(Extern::into_memory)
            .ok_or_else(|| PolicyFailure::Instantiate("memory export vanished".into()))
    }
}

fn typed<P: WasmParams, R: WasmResults>(
    store: &mut Store<StoreLimits>,
    instance: &Instance,
    export: &ModuleExport,
) -> Run<TypedFunc<P, R>> {
    instance
        .get_module_export(&mut *store, export)
        .and_then(Extern::into_func)
        .and_then(|func| func.typed::<P, R>(&*store).ok())
        .ok_or_else(|| PolicyFailure::Instantiate("function export vanished".into()))
}

/// The byte range `ptr..ptr + len` of guest memory, if it can be expressed.
fn region(ptr: i32, len: usize) -> Option<std::ops::Range<usize>> {
    let start = usize::try_from(ptr.cast_unsigned()).ok()?;
    Some(start..start.checked_add(len)?)
}

fn call<P: WasmParams, R: WasmResults>(
    store: &mut Store<StoreLimits>,
    func: &TypedFunc<P, R>,
    params: P,
) -> Run<R> {
    func.call(&mut *store, params).map_err(|error| {
        failure(store.data(), &error, || {
            PolicyFailure::Trap(format!("{error:#}"))
        })
    })
}

/// Classifies a wasmtime error: a refused memory growth first, then the epoch interrupt, then traps.
fn failure(
    limits: &StoreLimits,
    error: &wasmtime::Error,
    otherwise: impl FnOnce() -> PolicyFailure,
) -> PolicyFailure {
    if let Some((desired, limit)) = limits.denied {
        return MemoryFailure::LimitExceeded { desired, limit }.into();
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => PolicyFailure::Timeout,
        Some(trap) => PolicyFailure::Trap(trap.to_string()),
        None => otherwise(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::HostConfig;

    const ALLOW_ALL: &str = include_str!("../fixtures/allow_all.wat");

    // AC-POLICY-4
    #[test]
    fn an_exhausted_instance_pool_blocks_with_policy_memory() {
        let host = PolicyHost::new(HostConfig {
            pool_size: 1,
            ..HostConfig::default()
        })
        .unwrap();
        let policy = Policy::compile(&host, "allow", ALLOW_ALL.as_bytes()).unwrap();
        let mut holder = policy.store();
        let _held = policy.instantiate(&mut holder).unwrap();
        let failure = policy.evaluate(&PROBE).unwrap_err();
        assert_eq!(failure, PolicyFailure::Memory(MemoryFailure::PoolExhausted));
        assert_eq!(failure.code_name(), "POLICY_MEMORY");
        drop(holder);
        assert_eq!(policy.evaluate(&PROBE), Ok(Decision::Allow));
    }

    #[test]
    fn export_types_are_described_as_the_abi_table_writes_them() {
        let host = PolicyHost::new(HostConfig::default()).unwrap();
        let module = Module::new(&host.shared.engine, ALLOW_ALL).unwrap();
        let described: Vec<String> = module.exports().map(|e| describe(&e.ty())).collect();
        assert_eq!(
            described,
            ["memory32", "() -> i32", "(i32) -> i32", "(i32, i32) -> i64"]
        );
    }
}

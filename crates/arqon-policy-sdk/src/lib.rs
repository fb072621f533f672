//! Guest-side SDK for `ArqonBus` Wasm policies: a safe entry point over the policy ABI, and the ABI itself.
//!
//! A policy is a plain function from a decoded [`Message`] to a [`Decision`]; [`export_policy!`]
//! generates the ABI exports (`arqon_policy_abi_version`, `arqon_alloc`, `arqon_evaluate`) around it:
//!
//! ```
//! use arqon_policy_sdk::{Decision, Message};
//!
//! pub fn judge(message: &Message<'_>) -> Decision {
//!     if message.payload.len() > 1024 {
//!         Decision::block("payload too large")
//!     } else {
//!         Decision::Allow
//!     }
//! }
//! // In the policy's cdylib crate: arqon_policy_sdk::export_policy!(judge);
//! ```
//!
//! Build the crate for `wasm32-unknown-unknown` as a `cdylib`. The host gives every message a
//! fresh instance, so nothing a policy stores survives to the next message. Malformed input from
//! the host is blocked, never allowed. The host (`arqon-policy`) uses [`abi`] to encode inputs and
//! unpack verdicts, so both sides share one definition of the bytes.

pub mod abi;

pub use abi::{Headers, Message};

/// What a policy decides about one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Route the message.
    Allow,
    /// Do not route it; the reason (at most [`abi::MAX_REASON_LEN`] bytes, longer is cut) goes to
    /// the operator's metrics and audit, never to the sender.
    Block(String),
}

impl Decision {
    /// A block with `reason`.
    pub fn block(reason: impl Into<String>) -> Self {
        Decision::Block(reason.into())
    }
}

/// The signature of a policy function.
pub type Judge = fn(&Message<'_>) -> Decision;

/// Runtime behind [`export_policy!`]; not part of the public API.
#[doc(hidden)]
pub mod rt {
    use std::cell::RefCell;

    use crate::abi::{MAX_REASON_LEN, Message, Packed};
    use crate::{Decision, Judge};

    thread_local! {
        /// The buffer handed to the host by the last `arqon_alloc`.
        static INPUT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
        /// The reason of the last block; it must outlive `arqon_evaluate` so the host can read it.
        static REASON: RefCell<String> = const { RefCell::new(String::new()) };
    }

    /// The guest address of a buffer, or 0 when it does not fit the 32-bit address space.
    fn address(bytes: &[u8]) -> u32 {
        u32::try_from(bytes.as_ptr().expose_provenance()).unwrap_or(0)
    }

    /// `arqon_alloc`: reserves `len` zeroed bytes for the host to write the input into.
    pub fn alloc(len: i32) -> i32 {
        let Ok(len) = usize::try_from(len) else {
            return 0;
        };
        INPUT.with_borrow_mut(|buffer| {
            *buffer = vec![0; len];
            address(buffer).cast_signed()
        })
    }

    /// `arqon_evaluate`: judges the buffer the host filled; anything unexpected blocks.
    pub fn evaluate(ptr: i32, len: i32, judge: Judge) -> i64 {
        let input = INPUT.take();
        let matches = ptr.cast_unsigned() == address(&input)
            && usize::try_from(len).is_ok_and(|len| len == input.len());
        let decision = if matches {
            judge_bytes(&input, judge)
        } else {
            Decision::block("arqon-policy-sdk: input does not match the allocation")
        };
        pack(decision)
    }

    /// Decodes `bytes` and runs `judge`; malformed input is blocked.
    pub fn judge_bytes(bytes: &[u8], judge: Judge) -> Decision {
        match Message::decode(bytes) {
            Ok(message) => judge(&message),
            Err(_) => Decision::block("arqon-policy-sdk: malformed input"),
        }
    }

    /// Packs a decision, keeping the reason alive in guest memory; the reason is cut to
    /// [`MAX_REASON_LEN`] bytes on a character boundary.
    pub fn pack(decision: Decision) -> i64 {
        match decision {
            Decision::Allow => Packed::Allow.pack(),
            Decision::Block(mut reason) => {
                let cut = (0..=MAX_REASON_LEN.min(reason.len()))
                    .rev()
                    .find(|at| reason.is_char_boundary(*at))
                    .unwrap_or(0);
                reason.truncate(cut);
                REASON.with_borrow_mut(|kept| {
                    *kept = reason;
                    Packed::Block {
                        reason_ptr: address(kept.as_bytes()),
                        reason_len: u16::try_from(kept.len()).unwrap_or(0),
                    }
                    .pack()
                })
            }
        }
    }

    /// The reason of the last block packed by [`pack`] (for host-side tests of policies).
    pub fn last_reason() -> String {
        REASON.with_borrow(Clone::clone)
    }
}

/// Exports `$judge` (a [`Judge`]) as this module's policy, with the three ABI functions.
///
/// Use it once, in the root of a `cdylib` crate built for `wasm32-unknown-unknown`.
#[macro_export]
macro_rules! export_policy {
    ($judge:path) => {
        /// ABI version of this policy module.
        #[unsafe(no_mangle)]
        pub extern "C" fn arqon_policy_abi_version() -> i32 {
            $crate::abi::ABI_VERSION
        }

        /// Reserves the input buffer.
        #[unsafe(no_mangle)]
        pub extern "C" fn arqon_alloc(len: i32) -> i32 {
            $crate::rt::alloc(len)
        }

        /// Judges the input.
        #[unsafe(no_mangle)]
        pub extern "C" fn arqon_evaluate(ptr: i32, len: i32) -> i64 {
            $crate::rt::evaluate(ptr, len, $judge)
        }
    };
}

#[cfg(test)]
mod tests {
    use super::abi::{Input, MAX_REASON_LEN, Packed};
    use super::*;

    fn blocks_everything(message: &Message<'_>) -> Decision {
        Decision::block(format!(
            "{}é",
            "x".repeat(MAX_REASON_LEN - 2 + message.room.len())
        ))
    }

    #[test]
    fn long_reasons_are_cut_on_a_character_boundary() {
        let input = Input {
            tenant: "t",
            room: "r",
            sender: "s",
            headers: &[],
            payload: b"",
        };
        let decision = rt::judge_bytes(&input.encode().unwrap(), blocks_everything);
        let packed = Packed::unpack(rt::pack(decision)).unwrap();
        let reason = rt::last_reason();
        assert_eq!(reason.len(), MAX_REASON_LEN - 1);
        assert!(matches!(
            packed,
            Packed::Block {
                reason_len: 255,
                ..
            }
        ));
    }

    #[test]
    fn malformed_input_and_mismatched_buffers_block() {
        assert_eq!(
            rt::judge_bytes(b"short", |_| Decision::Allow),
            Decision::block("arqon-policy-sdk: malformed input")
        );
        let ptr = rt::alloc(8);
        let packed = rt::evaluate(ptr, 9, |_| Decision::Allow);
        assert!(matches!(Packed::unpack(packed), Ok(Packed::Block { .. })));
        assert_eq!(rt::alloc(-1), 0);
    }
}

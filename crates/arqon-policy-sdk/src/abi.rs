//! Policy ABI version 1: export names, the input layout and the verdict packing, shared by host and guest.
//!
//! This module is the single definition of the bytes that cross the host/guest boundary
//! (`specs/policy.md`, "Inputs and outputs"). The host encodes with [`Input::encode_into`] straight into
//! the guest's memory; the guest decodes with [`Message::decode`]. The verdict travels back packed
//! in one `i64` ([`Packed`]).

use std::str;

/// The ABI version this crate implements; `arqon_policy_abi_version` must return it.
pub const ABI_VERSION: i32 = 1;
/// Default wall-clock budget of one evaluation, in µs (SC-004); `[policy].time_budget` changes it.
pub const DEFAULT_TIME_BUDGET_US: u64 = 2_000;
/// Default cap on a policy's linear memory, in bytes; `[policy].memory_limit` changes it.
pub const DEFAULT_MEMORY_LIMIT: u64 = 16 << 20;
/// The exported linear memory the host writes the input into.
pub const EXPORT_MEMORY: &str = "memory";
/// `() -> i32`: the module's ABI version.
pub const EXPORT_ABI_VERSION: &str = "arqon_policy_abi_version";
/// `(len: i32) -> i32`: the address of `len` writable bytes, `0` when out of memory.
pub const EXPORT_ALLOC: &str = "arqon_alloc";
/// `(ptr: i32, len: i32) -> i64`: judges the input, returns a packed verdict.
pub const EXPORT_EVALUATE: &str = "arqon_evaluate";
/// Length of the input head: five `(offset, length)` pairs of little-endian `u32`.
pub const HEAD_LEN: usize = 40;
/// Longest block reason, in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// Field names, in layout order.
const FIELDS: [&str; 5] = ["tenant", "room", "sender", "headers", "payload"];

/// A message as the host hands it to a policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Input<'a> {
    /// The sender's tenant (from the verified token).
    pub tenant: &'a str,
    /// The room the message is published to.
    pub room: &'a str,
    /// The sender's user id (`sub` of the verified token).
    pub sender: &'a str,
    /// Envelope metadata as name/value pairs.
    pub headers: &'a [(&'a str, &'a str)],
    /// The payload bytes.
    pub payload: &'a [u8],
}

/// Why an input could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The encoded input would not fit a 32-bit length.
    #[error("encoded input is larger than 4 GiB")]
    TooLarge,
    /// The output buffer is shorter than [`Input::encoded_len`].
    #[error("output buffer holds {have} bytes, {need} needed")]
    BufferTooSmall {
        /// Bytes available.
        have: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// Why bytes are not a valid encoded input.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 40-byte head.
    #[error("input is {len} bytes, shorter than its head")]
    Truncated {
        /// Bytes present.
        len: usize,
    },
    /// A field's `(offset, length)` points outside the input.
    #[error("{field} lies outside the input")]
    OutOfBounds {
        /// Which field.
        field: &'static str,
    },
    /// A text field is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// Which field.
        field: &'static str,
    },
    /// The headers region is malformed.
    #[error("headers region is malformed")]
    BadHeaders,
}

/// Why an `i64` is not a valid packed verdict.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerdictError {
    /// The verdict byte or the reserved bits hold something other than block.
    #[error("unknown verdict value {0:#x}")]
    Unknown(i64),
    /// The reason is longer than [`MAX_REASON_LEN`].
    #[error("reason is {0} bytes, longer than {MAX_REASON_LEN}")]
    ReasonTooLong(u16),
}

impl Input<'_> {
    /// Length of the encoded input in bytes.
    pub fn encoded_len(&self) -> Result<usize, EncodeError> {
        let text = [self.tenant.len(), self.room.len(), self.sender.len()];
        [HEAD_LEN, self.headers_len()?, self.payload.len()]
            .into_iter()
            .chain(text)
            .try_fold(0_usize, usize::checked_add)
            .filter(|total| u32::try_from(*total).is_ok())
            .ok_or(EncodeError::TooLarge)
    }

    fn headers_len(&self) -> Result<usize, EncodeError> {
        self.headers
            .iter()
            .map(|(name, value)| 8 + name.len() + value.len())
            .try_fold(4_usize, usize::checked_add)
            .ok_or(EncodeError::TooLarge)
    }

    /// Encodes into the front of `out` (for example the guest's memory); returns the length written.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, EncodeError> {
        let need = self.encoded_len()?;
        let Some(out) = out.get_mut(..need) else {
            return Err(EncodeError::BufferTooSmall {
                have: out.len(),
                need,
            });
        };
        let lens = [
            self.tenant.len(),
            self.room.len(),
            self.sender.len(),
            self.headers_len()?,
            self.payload.len(),
        ];
        let mut writer = Writer { out, at: 0 };
        let mut offset = HEAD_LEN;
        for len in lens {
            writer.put_u32(offset);
            writer.put_u32(len);
            offset += len;
        }
        writer.put(self.tenant.as_bytes());
        writer.put(self.room.as_bytes());
        writer.put(self.sender.as_bytes());
        writer.put_u32(self.headers.len());
        for (name, value) in self.headers {
            writer.put_u32(name.len());
            writer.put(name.as_bytes());
            writer.put_u32(value.len());
            writer.put(value.as_bytes());
        }
        writer.put(self.payload);
        Ok(need)
    }

    /// Encodes into a new buffer.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = vec![0; self.encoded_len()?];
        self.encode_into(&mut out)?;
        Ok(out)
    }
}

/// Writes into a buffer already checked to be exactly `encoded_len` long, so every write fits.
struct Writer<'o> {
    out: &'o mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let end = self.at + bytes.len();
        if let Some(dst) = self.out.get_mut(self.at..end) {
            dst.copy_from_slice(bytes);
        }
        self.at = end;
    }

    /// Lengths and offsets were checked against `u32::MAX` by `encoded_len`.
    fn put_u32(&mut self, value: usize) {
        let value = u32::try_from(value).unwrap_or(u32::MAX);
        self.put(&value.to_le_bytes());
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let raw: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(raw)).ok()
}

/// A decoded input, borrowing the encoded bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// The sender's tenant.
    pub tenant: &'a str,
    /// The room.
    pub room: &'a str,
    /// The sender's user id.
    pub sender: &'a str,
    /// Envelope metadata.
    pub headers: Headers<'a>,
    /// The payload bytes.
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Decodes and validates an encoded input.
    pub fn decode(bytes: &'a [u8]) -> Result<Self, DecodeError> {
        if bytes.len() < HEAD_LEN {
            return Err(DecodeError::Truncated { len: bytes.len() });
        }
        let region = |index: usize| {
            let field = FIELDS[index];
            let offset = read_u32(bytes, index * 8);
            let len = read_u32(bytes, index * 8 + 4);
            offset
                .zip(len)
                .and_then(|(offset, len)| bytes.get(offset..offset.checked_add(len)?))
                .ok_or(DecodeError::OutOfBounds { field })
        };
        let text = |index: usize| {
            str::from_utf8(region(index)?).map_err(|_| DecodeError::NotUtf8 {
                field: FIELDS[index],
            })
        };
        Ok(Message {
            tenant: text(0)?,
            room: text(1)?,
            sender: text(2)?,
            headers: Headers::parse(region(3)?)?,
            payload: region(4)?,
        })
    }
}

/// The validated headers region of a [`Message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headers<'a> {
    entries: &'a [u8],
    count: usize,
}

impl<'a> Headers<'a> {
    fn parse(region: &'a [u8]) -> Result<Self, DecodeError> {
        let count = read_u32(region, 0).ok_or(DecodeError::BadHeaders)?;
        let entries = region.get(4..).ok_or(DecodeError::BadHeaders)?;
        let mut rest = entries;
        for _ in 0..count {
            (_, rest) = next_header(rest).ok_or(DecodeError::BadHeaders)?;
        }
        if rest.is_empty() {
            Ok(Headers { entries, count })
        } else {
            Err(DecodeError::BadHeaders)
        }
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The headers in order, as `(name, value)`.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + use<'a> {
        let mut rest = self.entries;
        (0..self.count).map_while(move |_| {
            let (header, tail) = next_header(rest)?;
            rest = tail;
            Some(header)
        })
    }

    /// The value of the first header called `name`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

type Header<'a> = (&'a str, &'a str);

fn next_header(bytes: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let (name, rest) = next_text(bytes)?;
    let (value, rest) = next_text(rest)?;
    Some(((name, value), rest))
}

fn next_text(bytes: &[u8]) -> Option<(&str, &[u8])> {
    let len = read_u32(bytes, 0)?;
    let text = bytes.get(4..4_usize.checked_add(len)?)?;
    Some((str::from_utf8(text).ok()?, bytes.get(4 + len..)?))
}

/// A verdict as it crosses the boundary in one `i64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packed {
    /// Route the message (packed as `0`).
    Allow,
    /// Block it; the reason is `reason_len` UTF-8 bytes at `reason_ptr` in the guest's memory.
    Block {
        /// Address of the reason.
        reason_ptr: u32,
        /// Length of the reason, at most [`MAX_REASON_LEN`].
        reason_len: u16,
    },
}

const VERDICT_SHIFT: u32 = 48;
const LEN_SHIFT: u32 = 32;
const VERDICT_BLOCK: u64 = 1;

impl Packed {
    /// Packs into the `i64` that `arqon_evaluate` returns.
    pub fn pack(self) -> i64 {
        match self {
            Packed::Allow => 0,
            Packed::Block {
                reason_ptr,
                reason_len,
            } => (VERDICT_BLOCK << VERDICT_SHIFT
                | u64::from(reason_len) << LEN_SHIFT
                | u64::from(reason_ptr))
            .cast_signed(),
        }
    }

    /// Unpacks the `i64` returned by `arqon_evaluate`; anything that is not allow or block is an error.
    pub fn unpack(value: i64) -> Result<Self, VerdictError> {
        if value == 0 {
            return Ok(Packed::Allow);
        }
        let bits = value.cast_unsigned();
        if bits >> VERDICT_SHIFT != VERDICT_BLOCK {
            return Err(VerdictError::Unknown(value));
        }
        let low = |shift: u32, mask: u64| (bits >> shift) & mask;
        let reason_len =
            u16::try_from(low(LEN_SHIFT, 0xffff)).map_err(|_| VerdictError::Unknown(value))?;
        let reason_ptr =
            u32::try_from(low(0, 0xffff_ffff)).map_err(|_| VerdictError::Unknown(value))?;
        if usize::from(reason_len) > MAX_REASON_LEN {
            return Err(VerdictError::ReasonTooLong(reason_len));
        }
        Ok(Packed::Block {
            reason_ptr,
            reason_len,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

    fn runner() -> TestRunner {
        let seed = [7_u8; 32];
        TestRunner::new_with_rng(
            Config::with_cases(512),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        )
    }

    // AC-POLICY-15
    #[test]
    fn ac_policy_15_input_round_trips() {
        let strategy = (
            ".{0,12}",
            ".{0,12}",
            ".{0,12}",
            proptest::collection::vec((".{0,6}", ".{0,6}"), 0..4),
            proptest::collection::vec(any::<u8>(), 0..64),
        );
        runner()
            .run(&strategy, |(tenant, room, sender, headers, payload)| {
                let pairs: Vec<(&str, &str)> = headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                let input = Input {
                    tenant: &tenant,
                    room: &room,
                    sender: &sender,
                    headers: &pairs,
                    payload: &payload,
                };
                let bytes = input
                    .encode()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(bytes.len(), input.encoded_len().unwrap_or(0));
                let message =
                    Message::decode(&bytes).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(message.tenant, tenant.as_str());
                prop_assert_eq!(message.room, room.as_str());
                prop_assert_eq!(message.sender, sender.as_str());
                prop_assert_eq!(message.payload, payload.as_slice());
                prop_assert_eq!(message.headers.len(), pairs.len());
                prop_assert_eq!(message.headers.iter().collect::<Vec<_>>(), pairs);
                Ok(())
            })
            .unwrap();
    }

    // AC-POLICY-15
    #[test]
    fn ac_policy_15_verdict_round_trips() {
        runner()
            .run(&(any::<u32>(), 0..=MAX_REASON_LEN), |(ptr, len)| {
                let block = Packed::Block {
                    reason_ptr: ptr,
                    reason_len: u16::try_from(len).unwrap(),
                };
                prop_assert_eq!(Packed::unpack(block.pack()), Ok(block));
                Ok(())
            })
            .unwrap();
        assert_eq!(Packed::Allow.pack(), 0);
        assert_eq!(Packed::unpack(0), Ok(Packed::Allow));
    }

    /// Fail closed at the boundary: only the exact value 0 means allow.
    #[test]
    fn no_nonzero_value_unpacks_to_allow() {
        runner()
            .run(&any::<i64>(), |value| {
                if value != 0 {
                    prop_assert_ne!(Packed::unpack(value), Ok(Packed::Allow));
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn payload_offset_and_length_sit_at_bytes_32_and_36() {
        let input = Input {
            tenant: "t",
            room: "r",
            sender: "s",
            headers: &[("k", "v")],
            payload: b"hello",
        };
        let bytes = input.encode().unwrap();
        let offset = read_u32(&bytes, 32).unwrap();
        assert_eq!(read_u32(&bytes, 36), Some(5));
        assert_eq!(&bytes[offset..offset + 5], b"hello");
    }

    #[test]
    fn malformed_verdicts_and_inputs_are_refused() {
        assert_eq!(Packed::unpack(2 << 48), Err(VerdictError::Unknown(2 << 48)));
        assert_eq!(Packed::unpack(1), Err(VerdictError::Unknown(1)));
        assert_eq!(Packed::unpack(-1), Err(VerdictError::Unknown(-1)));
        let long = 1_i64 << 48 | 257 << 32;
        assert_eq!(Packed::unpack(long), Err(VerdictError::ReasonTooLong(257)));
        assert_eq!(
            Message::decode(&[0; 10]),
            Err(DecodeError::Truncated { len: 10 })
        );
        let mut bytes = Input {
            tenant: "t",
            room: "r",
            sender: "s",
            headers: &[],
            payload: b"p",
        }
        .encode()
        .unwrap();
        bytes[36] = 200;
        assert_eq!(
            Message::decode(&bytes),
            Err(DecodeError::OutOfBounds { field: "payload" })
        );
        let mut short = [0_u8; 8];
        assert!(matches!(
            Input {
                tenant: "tenant",
                room: "",
                sender: "",
                headers: &[],
                payload: b""
            }
            .encode_into(&mut short),
            Err(EncodeError::BufferTooSmall { have: 8, .. })
        ));
    }
}

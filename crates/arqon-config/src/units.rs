//! Typed units in `arqon.toml`: durations (`"30s"`, `"500ms"`) and byte sizes (`"64KiB"`, `"1MiB"`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written as an integer and a unit: `us`, `ms`, `s`, `m` or `h` (`"30s"`, `"500ms"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(std::time::Duration);

const DURATION_UNITS: [(&str, u64); 5] = [
    ("us", 1),
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
];

impl Duration {
    /// A duration of `us` microseconds.
    pub const fn from_micros(us: u64) -> Self {
        Self(std::time::Duration::from_micros(us))
    }

    /// A duration of `ms` milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        Self(std::time::Duration::from_millis(ms))
    }

    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard library duration.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole seconds.
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// Whole milliseconds, saturating.
    pub fn as_millis(self) -> u64 {
        u64::try_from(self.0.as_millis()).unwrap_or(u64::MAX)
    }

    /// Whole microseconds, saturating.
    pub fn as_micros(self) -> u64 {
        u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(value: Duration) -> Self {
        value.0
    }
}

/// Why a unit string was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(String);

/// Splits `"123unit"` into the number and the unit.
fn split_number(text: &str) -> Option<(u64, &str)> {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let number = text.get(..digits)?.parse().ok()?;
    Some((number, text.get(digits..)?))
}

impl FromStr for Duration {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            UnitError(format!(
                "invalid duration {text:?}: expected an integer and a unit (us, ms, s, m, h), e.g. \"30s\""
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(invalid)?;
        let (_, scale) = DURATION_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        let micros = number.checked_mul(*scale).ok_or_else(invalid)?;
        Ok(Self(std::time::Duration::from_micros(micros)))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let micros = self.as_micros();
        let (unit, scale) = DURATION_UNITS
            .iter()
            .rev()
            .find(|(_, scale)| micros.is_multiple_of(*scale))
            .copied()
            .unwrap_or(("us", 1));
        let number = if micros == 0 { 0 } else { micros / scale };
        let unit = if micros == 0 { "s" } else { unit };
        write!(f, "{number}{unit}")
    }
}

/// A size in bytes, written `"64KiB"`, `"1MiB"`, `"512B"` (units B, KiB, MiB, GiB) or as a bare integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

const SIZE_UNITS: [(&str, u64); 4] = [
    ("B", 1),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
];

impl ByteSize {
    /// `n` bytes.
    pub const fn bytes(n: u64) -> Self {
        Self(n)
    }

    /// `n` KiB.
    pub const fn kib(n: u64) -> Self {
        Self(n << 10)
    }

    /// `n` MiB.
    pub const fn mib(n: u64) -> Self {
        Self(n << 20)
    }

    /// The size in bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The size in bytes as a `u32`, saturating (sizes are range-checked far below this).
    pub fn as_u32(self) -> u32 {
        u32::try_from(self.0).unwrap_or(u32::MAX)
    }

    /// The size in bytes as a `usize`, saturating.
    pub fn as_usize(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            UnitError(format!(
                "invalid size {text:?}: expected an integer and a unit (B, KiB, MiB, GiB), e.g. \"64KiB\""
            ))
        };
        let (number, unit) = split_number(text).ok_or_else(invalid)?;
        let (_, scale) = SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .ok_or_else(invalid)?;
        number.checked_mul(*scale).map(Self).ok_or_else(invalid)
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (unit, scale) = SIZE_UNITS
            .iter()
            .rev()
            .find(|(_, scale)| self.0 != 0 && self.0.is_multiple_of(*scale))
            .copied()
            .unwrap_or(("B", 1));
        write!(f, "{}{unit}", self.0 / scale)
    }
}

macro_rules! string_unit {
    ($name:ident, $schema_name:literal, $pattern:literal, $description:literal, $integers:literal, $from_integer:expr) => {
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                #[derive(Deserialize)]
                #[serde(untagged)]
                enum Raw {
                    Text(String),
                    Integer(u64),
                }
                match Raw::deserialize(deserializer) {
                    Ok(Raw::Text(text)) => text.parse().map_err(serde::de::Error::custom),
                    Ok(Raw::Integer(n)) => ($from_integer)(n)
                        .ok_or_else(|| serde::de::Error::custom(concat!("expected ", $description))),
                    Err(_) => Err(serde::de::Error::custom(concat!("expected ", $description))),
                }
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed($schema_name)
            }

            fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
                if $integers {
                    json_schema!({
                        "description": $description,
                        "anyOf": [
                            { "type": "string", "pattern": $pattern },
                            { "type": "integer", "minimum": 0 }
                        ]
                    })
                } else {
                    json_schema!({
                        "description": $description,
                        "type": "string",
                        "pattern": $pattern
                    })
                }
            }
        }
    };
}

string_unit!(
    Duration,
    "Duration",
    "^[0-9]+(us|ms|s|m|h)$",
    "a duration such as \"30s\" or \"500ms\" (units us, ms, s, m, h)",
    false,
    |_: u64| None::<Duration>
);
string_unit!(
    ByteSize,
    "ByteSize",
    "^[0-9]+(B|KiB|MiB|GiB)$",
    "a size such as \"64KiB\" or \"1MiB\" (units B, KiB, MiB, GiB), or a number of bytes",
    true,
    |n: u64| Some(ByteSize(n))
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print() {
        for (text, micros, printed) in [
            ("30s", 30_000_000, "30s"),
            ("500ms", 500_000, "500ms"),
            ("1500ms", 1_500_000, "1500ms"),
            ("2m", 120_000_000, "2m"),
            ("1h", 3_600_000_000, "1h"),
            ("250us", 250, "250us"),
            ("0s", 0, "0s"),
        ] {
            let duration: Duration = text.parse().expect(text);
            assert_eq!(duration.as_micros(), micros, "{text}");
            assert_eq!(duration.to_string(), printed);
        }
        for bad in [
            "",
            "30",
            "s",
            "1.5s",
            "-1s",
            "30 s",
            "30sec",
            "99999999999999999999h",
        ] {
            assert!(bad.parse::<Duration>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sizes_parse_and_print() {
        for (text, bytes, printed) in [
            ("64KiB", 65_536, "64KiB"),
            ("1MiB", 1_048_576, "1MiB"),
            ("512B", 512, "512B"),
            ("1536KiB", 1_572_864, "1536KiB"),
            ("2GiB", 2 << 30, "2GiB"),
        ] {
            let size: ByteSize = text.parse().expect(text);
            assert_eq!(size.get(), bytes, "{text}");
            assert_eq!(size.to_string(), printed);
        }
        for bad in ["", "64", "64kb", "64KB", "1.5MiB", "MiB"] {
            assert!(bad.parse::<ByteSize>().is_err(), "{bad:?}");
        }
    }
}

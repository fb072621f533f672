//! Validated identifiers that may reach a NATS subject: tenants, rooms and users.
//!
//! A `TenantId` comes only from a verified token; a `RoomName` only from a client, after this
//! grammar. Neither can contain `.`, `*`, `>` or whitespace, so neither can add a subject token
//! or a wildcard.
//!
//! Each holds its text in an `Arc<str>`: a session's identity and rooms are copied on every step of
//! its machine and into every subject and stamp, and a copy is then a reference count, not a
//! string allocation.

use std::fmt;
use std::sync::Arc;

/// Longest tenant id, in bytes.
pub const MAX_TENANT_LEN: usize = 64;
/// Longest room name, in bytes.
pub const MAX_ROOM_LEN: usize = 128;
/// Longest user id (`sub`), in bytes.
pub const MAX_USER_LEN: usize = 256;

/// Why a name was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which kind of name.
        kind: &'static str,
    },
    /// The name is longer than allowed.
    #[error("{kind} is {len} bytes, longer than {max}")]
    TooLong {
        /// Which kind of name.
        kind: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The name holds a character outside its grammar.
    #[error("{kind} holds a forbidden character at byte {at}")]
    ForbiddenChar {
        /// Which kind of name.
        kind: &'static str,
        /// Byte offset of the first bad character.
        at: usize,
    },
}

fn check(
    kind: &'static str,
    value: &str,
    max: usize,
    allowed: impl Fn(usize, char) -> bool,
) -> Result<(), NameError> {
    if value.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if value.len() > max {
        return Err(NameError::TooLong {
            kind,
            len: value.len(),
            max,
        });
    }
    match value.char_indices().find(|&(at, c)| !allowed(at, c)) {
        Some((at, _)) => Err(NameError::ForbiddenChar { kind, at }),
        None => Ok(()),
    }
}

/// A tenant id: `[a-z0-9][a-z0-9_-]{0,63}`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(Arc<str>);

impl TenantId {
    /// Parses a tenant id.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        check("tenant", value, MAX_TENANT_LEN, |at, c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || (at > 0 && (c == '_' || c == '-'))
        })?;
        Ok(Self(Arc::from(value)))
    }
}

/// A room name: `[A-Za-z0-9_-]{1,128}`.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName(Arc<str>);

impl RoomName {
    /// Parses a room name.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        check("room", value, MAX_ROOM_LEN, |_, c| {
            c.is_ascii_alphanumeric() || c == '_' || c == '-'
        })?;
        Ok(Self(Arc::from(value)))
    }
}

/// A user id (the token's `sub`): printable, no whitespace or control characters, at most 256 bytes.
/// It never reaches a subject.
#[derive(
    Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(Arc<str>);

impl UserId {
    /// Parses a user id.
    pub fn parse(value: &str) -> Result<Self, NameError> {
        check("user", value, MAX_USER_LEN, |_, c| {
            !c.is_whitespace() && !c.is_control()
        })?;
        Ok(Self(Arc::from(value)))
    }
}

macro_rules! string_conversions {
    ($($name:ident),*) => {$(
        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = NameError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                Self::parse(&value)
            }
        }
        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0.as_ref().to_owned()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}
string_conversions!(TenantId, RoomName, UserId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_grammar() {
        assert!(TenantId::parse("acme-1").is_ok());
        assert_eq!(
            TenantId::parse(""),
            Err(NameError::Empty { kind: "tenant" })
        );
        assert_eq!(
            TenantId::parse("-acme"),
            Err(NameError::ForbiddenChar {
                kind: "tenant",
                at: 0
            })
        );
        assert_eq!(
            TenantId::parse("ac.me"),
            Err(NameError::ForbiddenChar {
                kind: "tenant",
                at: 2
            })
        );
        assert_eq!(
            TenantId::parse("Acme"),
            Err(NameError::ForbiddenChar {
                kind: "tenant",
                at: 0
            })
        );
        assert!(matches!(
            TenantId::parse(&"a".repeat(65)),
            Err(NameError::TooLong { len: 65, .. })
        ));
    }

    #[test]
    fn room_grammar_refuses_subject_syntax() {
        assert!(RoomName::parse("General_Chat-2").is_ok());
        for bad in ["a.b", "*", ">", "a b", "a\tb", "é"] {
            assert!(RoomName::parse(bad).is_err(), "{bad:?} must be refused");
        }
        assert!(RoomName::parse(&"r".repeat(128)).is_ok());
        assert!(RoomName::parse(&"r".repeat(129)).is_err());
    }

    #[test]
    fn user_grammar() {
        assert!(UserId::parse("alice@example.com").is_ok());
        assert!(UserId::parse("al ice").is_err());
        assert!(UserId::parse("al\u{0}ice").is_err());
    }
}

//! The server's refusals as typed errors: one variant per kind of `Error` reply, so a caller can
//! match on what went wrong instead of reading a code.
//!
//! Every `ErrorCode` maps to exactly one variant ([`Refusal::from_reply`]); the mapping is the one
//! `specs/sdk.md` lists, and the Python and TypeScript SDKs raise the same kinds.

use std::time::Duration;

use arqon_proto::v1::ErrorCode;

/// Why the server refused a request: the `Error` reply that answered it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The room name fails the grammar (`INVALID_ROOM`).
    #[error("invalid room: {message}")]
    InvalidRoom {
        /// The server's words.
        message: String,
    },
    /// The session has not joined the room (`NOT_IN_ROOM`).
    #[error("not in room: {message}")]
    NotInRoom {
        /// The server's words.
        message: String,
    },
    /// The session is in as many rooms as it may be (`ROOM_LIMIT`).
    #[error("room limit reached: {message}")]
    RoomLimit {
        /// The server's words.
        message: String,
    },
    /// The payload is above the limit (`PAYLOAD_TOO_LARGE`).
    #[error("payload too large: {message}")]
    PayloadTooLarge {
        /// The server's words.
        message: String,
    },
    /// The publish rate was exceeded (`RATE_LIMITED`); try again after `retry_after`.
    #[error("rate limited: retry after {retry_after:?}")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// The policy chain blocked the message, or failed, which blocks too (`POLICY_*`).
    #[error("blocked by policy ({}): {message}", code.as_str_name())]
    PolicyBlocked {
        /// `POLICY_BLOCKED`, `POLICY_TRAP`, `POLICY_TIMEOUT`, `POLICY_MEMORY`, `POLICY_ABI` or
        /// `POLICY_LOAD`.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// The token was refused (`UNAUTHENTICATED`, `TOKEN_EXPIRED`, `TOKEN_INVALID`).
    #[error("token refused ({}): {message}", code.as_str_name())]
    Token {
        /// Which refusal.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// Authenticated but not allowed (`FORBIDDEN`).
    #[error("forbidden: {message}")]
    Forbidden {
        /// The server's words.
        message: String,
    },
    /// The node is draining (`SERVER_DRAINING`); the client reconnects elsewhere.
    #[error("server draining: {message}")]
    Draining {
        /// The server's words.
        message: String,
    },
    /// The frame broke the protocol (`PROTOCOL_ERROR`, `TEXT_FRAME`, `FRAME_TOO_LARGE`,
    /// `UNSUPPORTED_VERSION`).
    #[error("protocol error ({}): {message}", code.as_str_name())]
    Protocol {
        /// Which one.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// A governance refusal (`DIGEST_MISMATCH`, `CATALOG_STALE`, `NOT_FOUND`).
    #[error("governance refused ({}): {message}", code.as_str_name())]
    Governance {
        /// Which one.
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
    /// The tenant keeps no history, or it cannot be read now (`HISTORY_UNAVAILABLE`).
    #[error("history unavailable: {message}")]
    HistoryUnavailable {
        /// The server's words.
        message: String,
    },
    /// A server fault or a code this client does not know (`INTERNAL`, `SLOW_CONSUMER`, …).
    #[error("server error ({}): {message}", code.as_str_name())]
    Server {
        /// The code (`UNSPECIFIED` for one this client does not know).
        code: ErrorCode,
        /// The server's words.
        message: String,
    },
}

impl Refusal {
    /// The refusal an `Error` body stands for.
    pub fn from_reply(code: i32, message: String, retry_after_ms: u32) -> Self {
        let code = ErrorCode::try_from(code).unwrap_or(ErrorCode::Unspecified);
        match code {
            ErrorCode::InvalidRoom => Self::InvalidRoom { message },
            ErrorCode::NotInRoom => Self::NotInRoom { message },
            ErrorCode::RoomLimit => Self::RoomLimit { message },
            ErrorCode::PayloadTooLarge => Self::PayloadTooLarge { message },
            ErrorCode::RateLimited => Self::RateLimited {
                retry_after: Duration::from_millis(u64::from(retry_after_ms)),
            },
            ErrorCode::PolicyBlocked
            | ErrorCode::PolicyTrap
            | ErrorCode::PolicyTimeout
            | ErrorCode::PolicyMemory
            | ErrorCode::PolicyAbi
            | ErrorCode::PolicyLoad => Self::PolicyBlocked { code, message },
            ErrorCode::Unauthenticated | ErrorCode::TokenExpired | ErrorCode::TokenInvalid => {
                Self::Token { code, message }
            }
            ErrorCode::Forbidden => Self::Forbidden { message },
            ErrorCode::ServerDraining => Self::Draining { message },
            ErrorCode::ProtocolError
            | ErrorCode::TextFrame
            | ErrorCode::FrameTooLarge
            | ErrorCode::UnsupportedVersion => Self::Protocol { code, message },
            ErrorCode::DigestMismatch | ErrorCode::CatalogStale | ErrorCode::NotFound => {
                Self::Governance { code, message }
            }
            ErrorCode::HistoryUnavailable => Self::HistoryUnavailable { message },
            ErrorCode::SlowConsumer | ErrorCode::Internal | ErrorCode::Unspecified => {
                Self::Server { code, message }
            }
        }
    }

    /// The wire code behind the refusal (`RATE_LIMITED` for [`Refusal::RateLimited`], …).
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidRoom { .. } => ErrorCode::InvalidRoom,
            Self::NotInRoom { .. } => ErrorCode::NotInRoom,
            Self::RoomLimit { .. } => ErrorCode::RoomLimit,
            Self::PayloadTooLarge { .. } => ErrorCode::PayloadTooLarge,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Forbidden { .. } => ErrorCode::Forbidden,
            Self::Draining { .. } => ErrorCode::ServerDraining,
            Self::HistoryUnavailable { .. } => ErrorCode::HistoryUnavailable,
            Self::PolicyBlocked { code, .. }
            | Self::Token { code, .. }
            | Self::Protocol { code, .. }
            | Self::Governance { code, .. }
            | Self::Server { code, .. } => *code,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-SDK-10: every code maps to one typed refusal, and back to the same code.
    #[test]
    fn ac_sdk_10_every_error_code_has_a_typed_refusal_that_keeps_it() {
        let mut code = 0;
        while let Ok(known) = ErrorCode::try_from(code) {
            let refusal = Refusal::from_reply(code, "why".to_owned(), 1_500);
            assert_eq!(refusal.code(), known, "{refusal:?}");
            assert!(!refusal.to_string().is_empty());
            code += 1;
        }
        assert_eq!(code, 27, "a new ErrorCode needs its place in Refusal");
        assert_eq!(
            Refusal::from_reply(ErrorCode::RateLimited.into(), String::new(), 1_500),
            Refusal::RateLimited {
                retry_after: Duration::from_millis(1_500)
            }
        );
        assert_eq!(
            Refusal::from_reply(999, "?".to_owned(), 0).code(),
            ErrorCode::Unspecified
        );
    }
}

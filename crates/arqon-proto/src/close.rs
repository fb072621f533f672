//! WebSocket close codes the Shield uses, in the private range 4000-4999 (`specs/protocol.md`).

/// Why the server closed a session's WebSocket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// Too many protocol errors in the session's error budget.
    ProtocolErrors,
    /// The token expired and no valid `Refresh` arrived.
    TokenExpired,
    /// A `Refresh` carried an invalid token.
    TokenInvalid,
    /// The session lost its right to stay.
    Forbidden,
    /// The client speaks another MAJOR of the protocol.
    UnsupportedVersion,
    /// No frame arrived within the heartbeat deadline.
    HeartbeatTimeout,
    /// The outbound queue overflowed.
    SlowConsumer,
    /// The node is shutting down after `Drain`.
    ServerDraining,
    /// A frame above the transport limit.
    FrameTooLarge,
    /// A server fault.
    Internal,
}

impl CloseCode {
    /// Every close code, in numeric order.
    pub const ALL: [Self; 10] = [
        Self::ProtocolErrors,
        Self::TokenExpired,
        Self::TokenInvalid,
        Self::Forbidden,
        Self::UnsupportedVersion,
        Self::HeartbeatTimeout,
        Self::SlowConsumer,
        Self::ServerDraining,
        Self::FrameTooLarge,
        Self::Internal,
    ];

    /// The numeric close code sent in the WebSocket close frame.
    pub const fn code(self) -> u16 {
        match self {
            Self::ProtocolErrors => 4000,
            Self::TokenExpired => 4001,
            Self::TokenInvalid => 4002,
            Self::Forbidden => 4003,
            Self::UnsupportedVersion => 4004,
            Self::HeartbeatTimeout => 4005,
            Self::SlowConsumer => 4006,
            Self::ServerDraining => 4007,
            Self::FrameTooLarge => 4008,
            Self::Internal => 4009,
        }
    }

    /// The close reason sent with the code (short, ASCII, under the 123-byte limit).
    pub const fn reason(self) -> &'static str {
        match self {
            Self::ProtocolErrors => "too many protocol errors",
            Self::TokenExpired => "token expired",
            Self::TokenInvalid => "token invalid",
            Self::Forbidden => "forbidden",
            Self::UnsupportedVersion => "unsupported protocol version",
            Self::HeartbeatTimeout => "heartbeat timeout",
            Self::SlowConsumer => "slow consumer",
            Self::ServerDraining => "server draining",
            Self::FrameTooLarge => "frame too large",
            Self::Internal => "internal error",
        }
    }

    /// The close code with this number, if it is one of ours.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::CloseCode;

    // AC-PROTOCOL-15
    #[test]
    fn close_codes_are_private_range_unique_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for close in CloseCode::ALL {
            assert!((4000..5000).contains(&close.code()), "{close:?}");
            assert!(seen.insert(close.code()), "duplicate {close:?}");
            assert!(close.reason().len() <= 123 && close.reason().is_ascii());
            assert_eq!(CloseCode::from_code(close.code()), Some(close));
        }
        assert_eq!(CloseCode::from_code(1000), None);
    }
}

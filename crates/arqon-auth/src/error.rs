//! Why a token or a refresh was refused; each variant has a stable reason for metrics.

/// Why a token was refused. Never carries token text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token was presented.
    #[error("no token presented")]
    Missing,
    /// The token is larger than [`crate::MAX_TOKEN_BYTES`].
    #[error("token is {len} bytes, larger than {max}")]
    TooLarge {
        /// Its length in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The token is not a well-formed compact JWS.
    #[error("token is malformed: {what}")]
    Malformed {
        /// Which part is wrong (a fixed description, never token text).
        what: &'static str,
    },
    /// The header names an algorithm other than RS256.
    #[error("algorithm {alg} is refused; only RS256 is accepted")]
    AlgorithmRefused {
        /// The algorithm's name, or `other` when it is not a known JOSE name.
        alg: &'static str,
    },
    /// The header has no `kid`.
    #[error("token header has no kid")]
    MissingKid,
    /// The `kid` names no key in the JWKS.
    #[error("token kid names no known key")]
    UnknownKid,
    /// The RS256 signature does not verify under the named key.
    #[error("token signature does not verify")]
    BadSignature,
    /// A required claim is absent.
    #[error("claim {claim} is missing")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// A claim has the wrong type or a value outside its grammar.
    #[error("claim {claim} is invalid")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },
    /// `exp` (plus leeway) is not after now.
    #[error("token expired at {exp}, now is {now}")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The time it was judged at.
        now: u64,
    },
    /// `nbf` (minus leeway) is after now.
    #[error("token is not valid before {nbf}, now is {now}")]
    NotYetValid {
        /// The token's `nbf`.
        nbf: u64,
        /// The time it was judged at.
        now: u64,
    },
    /// `iss` is not the configured issuer.
    #[error("token issuer is not the configured issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience does not contain the configured audience")]
    WrongAudience,
}

impl AuthError {
    /// A stable, low-cardinality reason for metrics (`arqonbus.shield.auth_failures{reason}`).
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::AlgorithmRefused { .. } => "alg_refused",
            Self::MissingKid => "missing_kid",
            Self::UnknownKid => "unknown_kid",
            Self::BadSignature => "bad_signature",
            Self::MissingClaim { .. } => "missing_claim",
            Self::InvalidClaim { .. } => "invalid_claim",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::WrongIssuer => "wrong_issuer",
            Self::WrongAudience => "wrong_audience",
        }
    }
}

/// Why an in-band token refresh was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RefreshError {
    /// The new token does not verify on its own.
    #[error("refresh token refused: {0}")]
    Invalid(#[from] AuthError),
    /// The new token names another user.
    #[error("refresh token names a different subject")]
    SubjectChanged,
    /// The new token names another tenant.
    #[error("refresh token names a different tenant")]
    TenantChanged,
}

impl RefreshError {
    /// A stable reason for metrics; an invalid token reports the underlying [`AuthError::reason`].
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Invalid(error) => error.reason(),
            Self::SubjectChanged => "subject_changed",
            Self::TenantChanged => "tenant_changed",
        }
    }
}

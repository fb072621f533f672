//! Why a test fixture could not be set up: one error type for every fixture of the testkit.

/// Why a test fixture could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TestkitError {
    /// A process, socket or file operation failed.
    #[error("testkit I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A process did not become ready in time; `log` is the tail of what it printed.
    #[error("{what} did not become ready:\n{log}")]
    NotReady {
        /// What was waited for.
        what: String,
        /// The process's last log lines.
        log: String,
    },
    /// Keys could not be generated, written or used for signing.
    #[error("test issuer: {0}")]
    Keys(#[from] arqon_auth::DevKeyError),
    /// A key set could not be read back.
    #[error("test issuer: {0}")]
    Jwks(#[from] arqon_auth::JwksError),
    /// Claims for a token were refused (a bad tenant or user name).
    #[error("test token: {0}")]
    Token(String),
    /// A monitoring endpoint answered badly.
    #[error("monitoring GET {path}: {detail}")]
    Http {
        /// The path requested.
        path: String,
        /// What was wrong.
        detail: String,
    },
}

//! Test harness: real nats-server processes and clusters, a delaying TCP proxy, a round-robin TCP load balancer, a JWT issuer with JWKS, and a WebSocket test client.

mod balancer;
mod jwt;
mod nats;
mod otlp;
mod proxy;
mod ws;

pub use balancer::Balancer;
pub use jwt::{DEFAULT_SEED, JwtIssuer, unix_now};
pub use nats::{DEFAULT_NATS_SERVER, NatsCluster, NatsOptions, NatsServer};
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use proxy::DelayProxy;
pub use ws::{DEFAULT_RECV_TIMEOUT, Incoming, TokenCarrier, WsClient, WsError};

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

/// A TCP port on 127.0.0.1 that was free a moment ago: bound to port 0, read, released.
pub fn free_port() -> Result<u16, TestkitError> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

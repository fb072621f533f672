//! Why a Shield node could not start.

/// A failure starting a [`crate::Node`].
#[derive(Debug, thiserror::Error)]
pub enum ShieldError {
    /// The listener could not bind.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The JWKS or dev keys could not be loaded.
    #[error("cannot load token keys: {0}")]
    Keys(String),
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load TLS material: {0}")]
    Tls(String),
    /// The spine could not be reached.
    #[error(transparent)]
    Spine(#[from] arqon_spine::SpineError),
    /// A configuration value cannot be used.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The governance control plane or its audit store could not be used.
    #[error("governance: {0}")]
    Governance(String),
}

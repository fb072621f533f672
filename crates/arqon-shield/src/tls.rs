//! TLS termination with tokio-rustls: a listener that hands axum already-handshaken streams.
//!
//! Handshakes run in their own tasks, so a slow or hostile client cannot stall the accept loop.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arqon_config::TlsConfig;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

use crate::error::ShieldError;

/// A handshake that takes longer than this is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the acceptor from the PEM files of `[tls]`.
pub(crate) fn acceptor(files: &TlsConfig) -> Result<TlsAcceptor, ShieldError> {
    let tls = |what: &str, e: &dyn std::fmt::Display| ShieldError::Tls(format!("{what}: {e}"));
    let cert_pem = std::fs::read(&files.cert).map_err(|e| tls("certificate", &e))?;
    let key_pem = std::fs::read(&files.key).map_err(|e| tls("key", &e))?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| tls("certificate", &e))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|e| tls("key", &e))?
        .ok_or_else(|| ShieldError::Tls("key: no private key in the file".to_owned()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls("protocol versions", &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| tls("certificate and key", &e))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An axum listener yielding TLS streams.
pub(crate) struct TlsListener {
    local: io::Result<SocketAddr>,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub(crate) fn new(mut listener: TcpListener, acceptor: TlsAcceptor) -> Self {
        let local = listener.local_addr();
        let (tx, ready) = mpsc::channel(1024);
        tokio::spawn(async move {
            loop {
                // axum's accept skips a connection that failed its TCP handshake, and waits a
                // second after any other error (out of file descriptors, say) instead of retrying
                // at once in a busy loop.
                let (tcp, peer) = axum::serve::Listener::accept(&mut listener).await;
                let _ = tcp.set_nodelay(true);
                if tx.is_closed() {
                    break;
                }
                let acceptor = acceptor.clone();
                let ready = tx.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(stream)) =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
                    {
                        let _ = ready.send((stream, peer)).await;
                    }
                });
            }
        });
        Self { local, ready }
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        match &self.local {
            Ok(addr) => Ok(*addr),
            Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

//! A TCP proxy for fault injection: adds latency in both directions and can cut every connection.
//!
//! Each chunk read from one side is written to the other side no earlier than `delay` after it was
//! read, in order; throughput is not limited. The delay is the fault being injected, not a wait
//! for synchronisation.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::TestkitError;

/// Chunks in flight per direction before reading pauses.
const IN_FLIGHT: usize = 1024;

#[derive(Debug)]
struct Control {
    delay: watch::Sender<Duration>,
    cut: watch::Sender<bool>,
}

/// A delaying, cuttable TCP proxy on 127.0.0.1. Dropping it cuts every connection.
#[derive(Debug)]
pub struct DelayProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

impl DelayProxy {
    /// Listens on a free port and forwards each connection to `target`, adding `delay` each way.
    pub async fn start(target: SocketAddr, delay: Duration) -> Result<Self, TestkitError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let control = Arc::new(Control {
            delay: watch::Sender::new(delay),
            cut: watch::Sender::new(false),
        });
        let accept_control = Arc::clone(&control);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *accept_control.cut.borrow() {
                    continue; // Refused: dropping the socket closes it.
                }
                let control = Arc::clone(&accept_control);
                tokio::spawn(async move {
                    if let Ok(server) = TcpStream::connect(target).await {
                        relay(client, server, &control).await;
                    }
                });
            }
        });
        Ok(Self {
            addr,
            control,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `nats://127.0.0.1:<port>`, for pointing a NATS client at the proxy.
    pub fn nats_url(&self) -> String {
        format!("nats://{}", self.addr)
    }

    /// Changes the added latency for chunks read from now on.
    pub fn set_delay(&self, delay: Duration) {
        self.control.delay.send_replace(delay);
    }

    /// The added latency.
    pub fn delay(&self) -> Duration {
        *self.control.delay.borrow()
    }

    /// Closes every open connection and refuses new ones until [`DelayProxy::restore`].
    pub fn cut(&self) {
        self.control.cut.send_replace(true);
    }

    /// Accepts connections again after [`DelayProxy::cut`].
    pub fn restore(&self) {
        self.control.cut.send_replace(false);
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.control.cut.send_replace(true);
        self.accept.abort();
    }
}

/// Relays both directions until either side closes or the proxy is cut.
async fn relay(client: TcpStream, server: TcpStream, control: &Control) {
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let mut cut = control.cut.subscribe();
    tokio::select! {
        () = pump(client_read, server_write, control.delay.subscribe()) => {}
        () = pump(server_read, client_write, control.delay.subscribe()) => {}
        _ = cut.wait_for(|c| *c) => {}
    }
}

/// Copies one direction, holding each chunk until `delay` after it was read.
async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: watch::Receiver<Duration>) {
    let (tx, mut rx) = mpsc::channel::<(Instant, Bytes)>(IN_FLIGHT);
    let reader = async move {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let due = Instant::now() + *delay.borrow();
            if tx
                .send((due, Bytes::copy_from_slice(&buf[..n])))
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        to.shutdown().await.ok();
    };
    // The writer finishes after the reader (it drains what was read), or first on a write error.
    tokio::join!(reader, writer);
}

//! A round-robin TCP load balancer for rolling-restart tests, like one with TCP health checks in
//! front of a cluster: each accepted connection goes to the next backend that accepts a TCP connect,
//! skipping backends that refuse (a node that is down), and bytes are relayed untouched.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::error::TestkitError;

/// A TCP load balancer on 127.0.0.1. Dropping it stops accepting; relayed connections live on
/// until either side closes.
#[derive(Debug)]
pub struct Balancer {
    addr: SocketAddr,
    /// How many connections each backend was given, and how many of them are still open, in
    /// backend order.
    given: Arc<Vec<AtomicUsize>>,
    open: Arc<Vec<AtomicUsize>>,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Listens on a free port and spreads connections over `backends`, round robin.
    pub async fn start(backends: Vec<SocketAddr>) -> Result<Self, TestkitError> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let given: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let open: Arc<Vec<AtomicUsize>> =
            Arc::new(backends.iter().map(|_| AtomicUsize::new(0)).collect());
        let counts = Arc::clone(&given);
        let live = Arc::clone(&open);
        let backends = Arc::new(backends);
        let accept = tokio::spawn(async move {
            let next = Arc::new(AtomicUsize::new(0));
            while let Ok((mut client, _)) = listener.accept().await {
                let backends = Arc::clone(&backends);
                let counts = Arc::clone(&counts);
                let live = Arc::clone(&live);
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    let Some((index, mut server)) = pick(&backends, &next).await else {
                        return; // Every backend refused: dropping the client closes it.
                    };
                    counts[index].fetch_add(1, Ordering::Relaxed);
                    live[index].fetch_add(1, Ordering::AcqRel);
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    live[index].fetch_sub(1, Ordering::AcqRel);
                });
            }
        });
        Ok(Self {
            addr,
            given,
            open,
            accept,
        })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections each backend was given so far, in backend order.
    pub fn given(&self) -> Vec<usize> {
        self.given
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// How many relayed connections to each backend are open now, in backend order.
    pub fn open(&self) -> Vec<usize> {
        self.open
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect()
    }
}

/// The next backend, from the round-robin cursor on, that accepts a TCP connect.
async fn pick(backends: &[SocketAddr], next: &AtomicUsize) -> Option<(usize, TcpStream)> {
    let start = next.fetch_add(1, Ordering::Relaxed);
    for offset in 0..backends.len() {
        let index = (start + offset) % backends.len();
        if let Ok(stream) = TcpStream::connect(backends[index]).await {
            return Some((index, stream));
        }
    }
    None
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    /// An echo server that answers with its own tag first.
    async fn tagged_echo(tag: u8) -> SocketAddr {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let _ = socket.write_all(&[tag]).await;
                });
            }
        });
        addr
    }

    // AC-DEPLOY-4
    #[tokio::test]
    async fn spreads_round_robin_and_skips_a_backend_that_refuses() {
        let a = tagged_echo(b'a').await;
        let b = tagged_echo(b'b').await;
        // A port nothing listens on: bound, read, released.
        let down = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let down_addr = down.local_addr().unwrap();
        drop(down);
        let balancer = Balancer::start(vec![a, down_addr, b]).await.unwrap();
        let mut tags = Vec::new();
        for _ in 0..4 {
            let mut stream = TcpStream::connect(balancer.addr()).await.unwrap();
            let mut tag = [0u8; 1];
            stream.read_exact(&mut tag).await.unwrap();
            tags.push(tag[0]);
        }
        assert_eq!(tags, b"abba");
        assert_eq!(balancer.given(), vec![2, 0, 2]);
    }
}

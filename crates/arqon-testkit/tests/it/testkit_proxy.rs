//! `DelayProxy`: forwards both ways, adds the configured latency, and cuts on demand.

use std::net::SocketAddr;
use std::time::Duration;

use arqon_testkit::DelayProxy;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// An echo server on a free port.
async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                tokio::io::copy(&mut r, &mut w).await.ok();
            });
        }
    });
    addr
}

async fn round_trip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    stream.write_all(bytes).await?;
    let mut back = vec![0; bytes.len()];
    tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back))
        .await
        .map_err(|_| std::io::Error::other("timed out"))??;
    Ok(back)
}

#[tokio::test]
async fn forwards_with_the_added_latency_each_way() {
    let delay = Duration::from_millis(30);
    let proxy = DelayProxy::start(echo_server().await, delay).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"hello").await.unwrap(), b"hello");
    assert!(started.elapsed() >= 2 * delay, "{:?}", started.elapsed());

    proxy.set_delay(Duration::ZERO);
    assert_eq!(proxy.delay(), Duration::ZERO);
    let payload: Vec<u8> = (0..200_000u32).map(|i| i.to_le_bytes()[0]).collect();
    assert_eq!(round_trip(&mut client, &payload).await.unwrap(), payload);
}

#[tokio::test]
async fn cut_closes_connections_and_refuses_until_restored() {
    let proxy = DelayProxy::start(echo_server().await, Duration::ZERO)
        .await
        .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"a").await.unwrap(), b"a");

    proxy.cut();
    let mut buf = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(5), client.read(&mut buf))
        .await
        .unwrap();
    assert!(matches!(closed, Ok(0) | Err(_)), "{closed:?}");
    let mut refused = TcpStream::connect(proxy.addr()).await.unwrap();
    assert!(round_trip(&mut refused, b"b").await.is_err());

    proxy.restore();
    let mut again = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut again, b"c").await.unwrap(), b"c");
}

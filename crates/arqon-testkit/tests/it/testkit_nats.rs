//! `NatsServer` and `NatsCluster`: ready when returned, kill and restart on the same ports, `JetStream` on demand.

use std::time::Duration;

use arqon_testkit::{NatsCluster, NatsServer};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// Connects to a NATS port and returns the server's `INFO` object.
async fn info(port: u16) -> serde_json::Value {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(5),
        BufReader::new(stream).read_line(&mut line),
    )
    .await
    .unwrap()
    .unwrap();
    let json = line.strip_prefix("INFO ").expect("no INFO line");
    serde_json::from_str(json.trim()).unwrap()
}

#[tokio::test]
async fn server_is_ready_when_started_and_restarts_on_its_port() {
    let mut server = NatsServer::start().await.unwrap();
    let port = server.port();
    assert_eq!(server.url(), format!("nats://127.0.0.1:{port}"));
    let before = info(port).await;
    assert_eq!(before["server_name"], server.name());
    assert_ne!(before["jetstream"], true);

    server.kill().await.unwrap();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).await.is_err());

    server.restart().await.unwrap();
    assert!(server.is_running());
    assert_eq!(server.port(), port);
    let after = info(port).await;
    assert_ne!(after["server_id"], before["server_id"], "not a new process");
    assert_eq!(server.monitor("/varz").await.unwrap()["port"], port);
}

#[tokio::test]
async fn jetstream_is_enabled_when_asked() {
    let server = NatsServer::start_jetstream().await.unwrap();
    assert_eq!(info(server.port()).await["jetstream"], true);
    let jsz = server.monitor("/jsz").await.unwrap();
    assert!(
        jsz["config"]["store_dir"]
            .as_str()
            .is_some_and(|d| !d.is_empty())
    );
}

#[tokio::test]
async fn dropping_a_server_kills_it() {
    let server = NatsServer::start().await.unwrap();
    let port = server.port();
    drop(server);
    // SIGKILL is sent on drop; the port stops accepting once the process is gone.
    let gone = async {
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap();
}

#[tokio::test]
async fn cluster_meshes_and_heals_after_a_node_restart() {
    let mut cluster = NatsCluster::start(3).await.unwrap();
    assert_eq!(cluster.urls().len(), 3);
    for node in cluster.nodes() {
        assert_eq!(node.monitor("/routez").await.unwrap()["num_routes"], 2);
        assert_eq!(info(node.port()).await["jetstream"], true);
    }
    cluster.kill(1).await.unwrap();
    assert!(!cluster.node(1).is_running());
    cluster.wait_meshed().await.unwrap();
    assert_eq!(
        cluster.node(0).monitor("/routez").await.unwrap()["num_routes"],
        1
    );
    cluster.restart(1).await.unwrap();
    for node in cluster.nodes() {
        assert_eq!(node.monitor("/routez").await.unwrap()["num_routes"], 2);
    }
}

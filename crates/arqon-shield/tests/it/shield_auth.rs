//! US1: authentication before the upgrade, on both spines; health, readiness and metrics routes.

use arqon_auth::{Claims, Role, forge};
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::v1::envelope::Body;

use crate::support::{
    self, Bus, connect, connect_with, expired_token, http_get, keys, now_secs, token,
};

// AC-SHIELD-1 AC-SHIELD-2 AC-SHIELD-3
#[tokio::test]
async fn us1_valid_token_gets_welcome_bad_or_missing_token_gets_401_on_both_spines() {
    for bus in Bus::both().await {
        let mut config = support::config();
        bus.apply(&mut config);
        let node = support::start(config).await;

        // US1-1: a valid JWT gets the upgrade and a Welcome naming the session's tenant and user.
        let (_client, welcome) = connect(&node, &token("acme", "alice", 60)).await;
        assert_eq!(welcome.tenant_id, "acme", "{}", bus.name());
        assert_eq!(welcome.user_id, "alice");
        assert!(!welcome.session_id.is_empty());
        assert!(welcome.limits.is_some_and(|l| l.max_rooms > 0));

        // US1-2: invalid or expired → 401, no upgrade.
        let bad = connect_with(
            &node,
            Some(("authorization", "Bearer not-a-jwt".to_owned())),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(bad.status, 401, "{}", bus.name());
        let expired = connect_with(
            &node,
            Some((
                "authorization",
                format!("Bearer {}", expired_token("acme", "alice")),
            )),
        )
        .await
        .err()
        .unwrap();
        assert_eq!(expired.status, 401);

        // US1-3: no auth header → 401.
        assert_eq!(connect_with(&node, None).await.err().unwrap().status, 401);

        assert_eq!(node.metrics().auth_failures.get("expired"), 1);
        assert_eq!(node.metrics().auth_failures.get("missing"), 1);
        assert_eq!(node.metrics().auth_failures.get("malformed"), 1);
        node.shutdown().await;
    }
}

// AC-SHIELD-2
#[tokio::test]
async fn forged_tokens_wrong_issuer_or_audience_get_401_and_a_reason_count() {
    let node = support::start(support::config()).await;
    let claims = Claims::dev(
        TenantId::parse("acme").unwrap(),
        UserId::parse("alice").unwrap(),
        Role::User,
        now_secs(),
        60,
    );
    let kid = keys().kid().to_owned();
    let mut wrong_iss = claims.clone();
    wrong_iss.iss = "https://evil.example".to_owned();
    let mut wrong_aud = claims.clone();
    wrong_aud.aud = vec!["someone-else".to_owned()];
    let public_key_bytes = keys().to_jwks_json().into_bytes();
    let cases = [
        ("alg_refused", forge::alg_none(&claims.to_json(), &kid)),
        (
            "alg_refused",
            forge::hs256(&claims.to_json(), &public_key_bytes, &kid).unwrap(),
        ),
        ("wrong_issuer", keys().mint(&wrong_iss).unwrap()),
        ("wrong_audience", keys().mint(&wrong_aud).unwrap()),
    ];
    for (reason, forged) in &cases {
        let refused = connect_with(&node, Some(("authorization", format!("Bearer {forged}"))))
            .await
            .err()
            .unwrap_or_else(|| panic!("{reason} token was accepted"));
        assert_eq!(refused.status, 401, "{reason}");
    }
    assert_eq!(node.metrics().auth_failures.get("alg_refused"), 2);
    assert_eq!(node.metrics().auth_failures.get("wrong_issuer"), 1);
    assert_eq!(node.metrics().auth_failures.get("wrong_audience"), 1);
    assert_eq!(
        node.metrics()
            .connections_accepted
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    node.shutdown().await;
}

// AC-SHIELD-1
#[tokio::test]
async fn browser_carrier_in_the_subprotocol_is_accepted_and_arqon_v1_echoed() {
    let node = support::start(support::config()).await;
    let offer = format!("arqon.v1, bearer.{}", token("acme", "bob", 60));
    let (mut client, protocol) = connect_with(&node, Some(("sec-websocket-protocol", offer)))
        .await
        .unwrap();
    assert_eq!(protocol.as_deref(), Some("arqon.v1"));
    let welcome = client
        .expect(|body| match body {
            Body::Welcome(w) => Some(w.user_id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(welcome, "bob");
    node.shutdown().await;
}

// AC-OBS-7
#[tokio::test]
async fn metrics_off_serves_no_metrics_route() {
    let mut config = support::config();
    config.telemetry.metrics = false;
    let node = support::start(config).await;
    assert_eq!(http_get(&node, "/healthz").await.0, 200);
    assert_eq!(http_get(&node, "/metrics").await.0, 404);
    node.shutdown().await;
}

// AC-SHIELD-16
#[tokio::test]
async fn health_ready_and_metrics_routes() {
    let node = support::start(support::config()).await;
    assert_eq!(http_get(&node, "/healthz").await.0, 200);
    assert_eq!(http_get(&node, "/readyz").await.0, 200);
    let _ = connect(&node, &token("acme", "alice", 60)).await;
    let (status, text) = http_get(&node, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains("arqonbus_shield_connections_accepted 1"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE arqonbus_shield_connections_open gauge"),
        "{text}"
    );
    node.shutdown().await;
}

/// Waits (bounded by [`support::WAIT`]) until `/readyz` answers `status`.
async fn readyz_becomes(node: &arqon_shield::Node, status: u16, what: &str) {
    tokio::time::timeout(support::WAIT, async {
        while http_get(node, "/readyz").await.0 != status {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("readyz never {what}"));
}

// AC-SHIELD-16
#[tokio::test]
async fn readyz_fails_while_the_spine_is_unreachable() {
    let mut server = arqon_testkit::NatsServer::start_jetstream().await.unwrap();
    let mut config = support::config();
    config.spine.kind = arqon_config::SpineKind::Nats;
    config.spine.nats_urls = vec![server.url()];
    let node = support::start(config).await;
    assert_eq!(http_get(&node, "/readyz").await.0, 200);
    server.kill().await.unwrap();
    // The spine reports the disconnect as an event; readiness follows it.
    readyz_becomes(&node, 503, "failed").await;
    assert_eq!(http_get(&node, "/healthz").await.0, 200);
    server.restart().await.unwrap();
    readyz_becomes(&node, 200, "recovered").await;
    node.shutdown().await;
}

// AC-SHIELD-16: a network partition between the node and NATS (the server keeps running) is
// reported the same way, and the node comes back by itself when the partition heals.
#[tokio::test]
async fn readyz_reports_a_partition_from_nats_and_recovers_when_it_heals() {
    let server = arqon_testkit::NatsServer::start_jetstream().await.unwrap();
    let server_addr: std::net::SocketAddr = format!("127.0.0.1:{}", server.port()).parse().unwrap();
    let proxy = arqon_testkit::DelayProxy::start(server_addr, std::time::Duration::ZERO)
        .await
        .unwrap();
    let mut config = support::config();
    config.spine.kind = arqon_config::SpineKind::Nats;
    config.spine.nats_urls = vec![proxy.nats_url()];
    let node = support::start(config).await;
    assert_eq!(http_get(&node, "/readyz").await.0, 200);
    proxy.cut();
    readyz_becomes(&node, 503, "reported the partition").await;
    assert_eq!(
        http_get(&node, "/healthz").await.0,
        200,
        "the process itself is fine"
    );
    proxy.restore();
    readyz_becomes(&node, 200, "recovered after the partition healed").await;
    assert!(server.is_running());
    node.shutdown().await;
}

// AC-SHIELD-19
#[tokio::test]
async fn tls_listener_serves_wss_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .args([
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "extendedKeyUsage=serverAuth",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let mut config = support::config();
    config.tls = Some(arqon_config::TlsConfig {
        cert: cert.clone(),
        key,
    });
    let node = support::start(config).await;
    assert!(node.socket_url().starts_with("wss://"));

    let pem = std::fs::read(&cert).unwrap();
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for der in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(der.unwrap()).unwrap();
    }
    let client_config = tokio_rustls::rustls::ClientConfig::builder_with_provider(
        std::sync::Arc::new(tokio_rustls::rustls::crypto::ring::default_provider()),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(node.local_addr())
        .await
        .unwrap();
    let name = tokio_rustls::rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            node.socket_url(),
        )
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", token("acme", "alice", 60))
            .parse()
            .unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::client_async(request, tls).await.unwrap();
    let first = tokio::time::timeout(support::WAIT, futures_util::StreamExt::next(&mut ws))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let envelope =
        <arqon_proto::v1::Envelope as prost::Message>::decode(first.into_data()).unwrap();
    assert!(matches!(envelope.body, Some(Body::Welcome(_))));
    drop(ws);
    node.shutdown().await;
}

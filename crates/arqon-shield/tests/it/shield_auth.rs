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

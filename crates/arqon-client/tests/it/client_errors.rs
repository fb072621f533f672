//! Typed refusals through `BusClient`: each call that the server refuses returns its typed
//! `Refusal` within one round trip, never a time-out (specs/sdk.md, AC-SDK-11).

use std::time::Duration;

use arqon_auth::DevKeys;
use arqon_client::{BusClient, ClientError, Refusal};
use arqon_config::{ByteSize, Rate};
use arqon_shield::Node;
use tokio::time::timeout;

use crate::client_rooms::token;

/// One round trip on loopback is well under this; a time-out would be far longer.
const ONE_ROUND_TRIP: Duration = Duration::from_secs(2);

async fn refused(call: impl std::future::Future<Output = Result<(), ClientError>>) -> Refusal {
    match timeout(ONE_ROUND_TRIP, call).await {
        Ok(Err(ClientError::Server(refusal))) => refusal,
        other => panic!("expected a typed refusal, got {other:?}"),
    }
}

// AC-SDK-11
#[tokio::test]
async fn ac_sdk_11_refused_calls_return_typed_errors_within_one_round_trip() {
    let keys = DevKeys::generate().unwrap();
    let mut config = arqon_config::Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.auth.jwks = Some(keys.to_jwks_json());
    config.limits.tenant_defaults.max_payload = ByteSize::kib(1);
    config.limits.tenant_defaults.max_rooms = 2;
    config.limits.tenant_defaults.connection_publish = Rate {
        per_sec: 1,
        burst: 3,
    };
    let node = Node::start(config).await.unwrap();
    let client = BusClient::connect(&node.socket_url(), &token(&keys, "alice"))
        .await
        .unwrap();

    for bad in ["a.>", &"r".repeat(300), "with space"] {
        assert!(
            matches!(refused(client.join(bad)).await, Refusal::InvalidRoom { .. }),
            "{bad}"
        );
    }
    assert!(matches!(
        refused(client.publish("lobby", "hi", "text/plain")).await,
        Refusal::NotInRoom { .. }
    ));
    assert!(matches!(
        refused(client.leave("lobby")).await,
        Refusal::NotInRoom { .. }
    ));
    client.join("lobby").await.unwrap();
    client.join("second").await.unwrap();
    assert!(matches!(
        refused(client.join("third")).await,
        Refusal::RoomLimit { .. }
    ));
    assert!(matches!(
        refused(client.publish("lobby", vec![b'x'; 2048], "text/plain")).await,
        Refusal::PayloadTooLarge { .. }
    ));
    // A burst past the bucket: the first three pass, then a typed refusal with its retry-after.
    for _ in 0..3 {
        client.publish("lobby", "ok", "text/plain").await.unwrap();
    }
    match refused(client.publish("lobby", "one too many", "text/plain")).await {
        Refusal::RateLimited { retry_after } => {
            assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(1));
        }
        other => panic!("{other:?}"),
    }
    node.shutdown().await;
}

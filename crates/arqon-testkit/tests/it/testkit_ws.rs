//! `WsClient` against a scripted WebSocket server: both token carriers, refusals, envelopes and closes.

use std::net::SocketAddr;

use arqon_proto::outbound;
use arqon_proto::v1::envelope::Body;
use arqon_proto::v1::{Envelope, Header, Message, Ping, Pong, Welcome};
use arqon_proto::{decode_envelope, encode_envelope};
use arqon_testkit::{TokenCarrier, WsClient, WsError};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const TOKEN: &str = "t0k3n";

fn server_envelope(body: impl Into<Body>) -> WsMessage {
    let header = Header {
        protocol_version: 1,
        ..Header::default()
    };
    WsMessage::Binary(encode_envelope(&outbound::envelope(header, body)))
}

/// Accepts connections carrying [`TOKEN`] in either carrier, else answers 401 with Retry-After.
/// Then: sends `Welcome`; answers a publish with a server `Ping` followed by the `Message`;
/// answers a client `Ping` with a `Pong`; closes with 4002 on a leave.
async fn scripted_server() -> SocketAddr {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(async move {
                #[allow(clippy::result_large_err, reason = "tungstenite's callback signature")]
                let check = |request: &Request, mut response: Response| {
                    let header = |n: &str| request.headers().get(n).and_then(|v| v.to_str().ok());
                    let bearer = header("authorization") == Some(&format!("Bearer {TOKEN}"));
                    let protocol = header("sec-websocket-protocol")
                        == Some(&format!("arqon.v1, bearer.{TOKEN}"));
                    if protocol {
                        response.headers_mut().insert(
                            "sec-websocket-protocol",
                            HeaderValue::from_static("arqon.v1"),
                        );
                    }
                    if bearer || protocol {
                        return Ok(response);
                    }
                    let mut refused = ErrorResponse::new(None);
                    *refused.status_mut() = StatusCode::UNAUTHORIZED;
                    refused
                        .headers_mut()
                        .insert("retry-after", HeaderValue::from_static("1"));
                    Err(refused)
                };
                let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, check).await else {
                    return;
                };
                let welcome = Welcome {
                    session_id: "s-1".into(),
                    ..Welcome::default()
                };
                ws.send(server_envelope(welcome)).await.unwrap();
                while let Some(Ok(WsMessage::Binary(bytes))) = ws.next().await {
                    let envelope: Envelope = decode_envelope(bytes, 1 << 20).unwrap();
                    match envelope.body.unwrap() {
                        Body::Publish(p) => {
                            ws.send(server_envelope(Ping { nonce: 7 })).await.unwrap();
                            let message = Message {
                                room: p.room,
                                payload: p.payload,
                                content_type: p.content_type,
                                ..Message::default()
                            };
                            ws.send(server_envelope(message)).await.unwrap();
                        }
                        Body::Pong(Pong { nonce }) => assert_eq!(nonce, 7),
                        Body::Ping(Ping { nonce }) => {
                            ws.send(server_envelope(Pong { nonce })).await.unwrap();
                        }
                        Body::Leave(_) => {
                            let frame = CloseFrame {
                                code: CloseCode::from(4002),
                                reason: "bye".into(),
                            };
                            ws.send(WsMessage::Close(Some(frame))).await.ok();
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            });
        }
    });
    addr
}

fn url(addr: SocketAddr) -> String {
    format!("ws://{addr}/v1/socket")
}

#[tokio::test]
async fn bearer_client_gets_welcome_message_and_pong() {
    let addr = scripted_server().await;
    let mut client = WsClient::connect(&url(addr), TOKEN).await.unwrap();
    assert_eq!(client.expect_welcome().await.unwrap().session_id, "s-1");
    client.publish("lobby", b"hi").await.unwrap();
    // The server Ping in between is answered and skipped.
    let (header, message) = client.expect_message().await.unwrap();
    assert_eq!(header.protocol_version, 1);
    assert_eq!(
        (message.room.as_str(), &message.payload[..]),
        ("lobby", &b"hi"[..])
    );
    client.ping(42).await.unwrap();
    assert_eq!(client.expect_pong().await.unwrap().nonce, 42);
    client.ping(43).await.unwrap();
    assert!(matches!(
        client.expect_error().await,
        Err(WsError::Unexpected {
            want: "error",
            got: "pong"
        })
    ));
    client.leave("lobby").await.unwrap();
    assert_eq!(
        client.expect_close().await.unwrap(),
        (Some(4002), "bye".to_owned())
    );
}

#[tokio::test]
async fn subprotocol_carrier_is_echoed() {
    let addr = scripted_server().await;
    let mut client = WsClient::connect_with(&url(addr), Some((TOKEN, TokenCarrier::Subprotocol)))
        .await
        .unwrap();
    assert_eq!(client.subprotocol(), Some("arqon.v1"));
    client.expect_welcome().await.unwrap();
    client.close().await.unwrap();
}

#[tokio::test]
async fn refusal_reports_status_and_retry_after() {
    let addr = scripted_server().await;
    for token in [None, Some(("wrong", TokenCarrier::Bearer))] {
        match WsClient::connect_with(&url(addr), token).await {
            Err(WsError::Rejected {
                status,
                retry_after,
            }) => {
                assert_eq!(status, 401);
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn silence_is_a_timeout_not_a_hang() {
    let addr = scripted_server().await;
    let mut client = WsClient::connect(&url(addr), TOKEN).await.unwrap();
    client.expect_welcome().await.unwrap();
    let wait = std::time::Duration::from_millis(50);
    assert!(matches!(client.recv_timeout(wait).await, Err(WsError::Timeout(d)) if d == wait));
}

//! A WebSocket test client speaking `arqon.v1` envelopes, with bounded waits and `expect_*` helpers.
//!
//! Every receive has a timeout, so a test that waits for something that never comes fails with
//! a message instead of hanging. The `expect_*` helpers answer server `Ping` envelopes with a
//! `Pong` and skip them; [`WsClient::recv`] returns every frame as it comes.

use std::time::Duration;

use arqon_proto::v1::envelope::Body;
use arqon_proto::v1::{
    Ack, Drain, Envelope, Error as ErrorBody, Header, Join, Leave, Message as MessageBody, Ping,
    Pong, PresenceLeave, PresenceUpdate, Publish, Refresh, Welcome,
};
use arqon_proto::{PROTOCOL_VERSION, body_name, decode_envelope, encode_envelope};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{self, Message as WsMessage};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a receive waits by default.
pub const DEFAULT_RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest frame the client decodes.
const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Where the client puts its token on the upgrade request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenCarrier {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `Sec-WebSocket-Protocol: arqon.v1, bearer.<token>` (what browsers use).
    Subprotocol,
}

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The server answered the upgrade with an HTTP status instead of 101.
    #[error("upgrade refused with HTTP {status}")]
    Rejected {
        /// The status (401, 503, …).
        status: u16,
        /// The `Retry-After` header, when present.
        retry_after: Option<String>,
    },
    /// Socket or WebSocket protocol failure.
    #[error("websocket: {0}")]
    Ws(#[from] tungstenite::Error),
    /// Nothing arrived in time.
    #[error("nothing received within {0:?}")]
    Timeout(Duration),
    /// The server closed the connection; `code` is the WebSocket close code.
    #[error("closed by the server with code {code:?}: {reason}")]
    Closed {
        /// The close code, when the close frame had one.
        code: Option<u16>,
        /// The close reason.
        reason: String,
    },
    /// A binary frame did not decode as an envelope.
    #[error("undecodable frame: {0}")]
    Decode(#[from] arqon_proto::ProtocolError),
    /// A text frame arrived; the protocol is binary only.
    #[error("unexpected text frame")]
    TextFrame,
    /// An envelope arrived, but not the one expected.
    #[error("expected {want}, got {got}")]
    Unexpected {
        /// The body expected.
        want: &'static str,
        /// The body received.
        got: &'static str,
    },
}

/// What [`WsClient::recv`] hands back.
#[derive(Clone, Debug, PartialEq)]
pub enum Incoming {
    /// A decoded envelope.
    Envelope(Box<Envelope>),
    /// The server's close frame.
    Close {
        /// The close code, when present.
        code: Option<u16>,
        /// The reason text.
        reason: String,
    },
}

/// Defines `expect_<body>`: the next envelope must carry `Body::<variant>`; returns the body.
macro_rules! expect_body {
    ($(#[$doc:meta])* $name:ident, $want:literal, $variant:ident, $body:ty) => {
        $(#[$doc])*
        pub async fn $name(&mut self) -> Result<$body, WsError> {
            let (_, body) = self
                .expect($want, |b| match b {
                    Body::$variant(x) => Some(x),
                    _ => None,
                })
                .await?;
            Ok(body)
        }
    };
}

/// A connected test client.
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    timeout: Duration,
    sent: u64,
    subprotocol: Option<String>,
}

impl std::fmt::Debug for WsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsClient")
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl WsClient {
    /// Connects to `url` (`ws://host:port/v1/socket`) with `token` as `Authorization: Bearer`.
    pub async fn connect(url: &str, token: &str) -> Result<Self, WsError> {
        Self::connect_with(url, Some((token, TokenCarrier::Bearer))).await
    }

    /// Connects with the token in the given carrier, or with no token at all.
    pub async fn connect_with(
        url: &str,
        token: Option<(&str, TokenCarrier)>,
    ) -> Result<Self, WsError> {
        let mut request = url.into_client_request()?;
        if let Some((token, carrier)) = token {
            let (name, value) = match carrier {
                TokenCarrier::Bearer => ("authorization", format!("Bearer {token}")),
                TokenCarrier::Subprotocol => (
                    "sec-websocket-protocol",
                    format!(
                        "{}, {}{token}",
                        arqon_auth::SUBPROTOCOL,
                        arqon_auth::SUBPROTOCOL_TOKEN_PREFIX
                    ),
                ),
            };
            let value = HeaderValue::from_str(&value)
                .map_err(|e| tungstenite::Error::HttpFormat(e.into()))?;
            request.headers_mut().insert(name, value);
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, response)) => Ok(Self {
                socket,
                timeout: DEFAULT_RECV_TIMEOUT,
                sent: 0,
                subprotocol: response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }),
            Err(tungstenite::Error::Http(response)) => Err(WsError::Rejected {
                status: response.status().as_u16(),
                retry_after: response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// The subprotocol the server chose, if any.
    pub fn subprotocol(&self) -> Option<&str> {
        self.subprotocol.as_deref()
    }

    /// Changes the default receive timeout.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// A client header with the protocol version and a fresh `message_id` (`c-<n>`).
    pub fn header(&mut self) -> Header {
        self.sent += 1;
        Header {
            protocol_version: PROTOCOL_VERSION,
            message_id: format!("c-{}", self.sent),
            ..Header::default()
        }
    }

    /// Sends an envelope as a binary frame.
    pub async fn send(&mut self, envelope: &Envelope) -> Result<(), WsError> {
        self.send_raw(WsMessage::Binary(encode_envelope(envelope)))
            .await
    }

    /// Sends `body` with a fresh header; returns the header's `message_id`.
    pub async fn send_body(&mut self, body: impl Into<Body>) -> Result<String, WsError> {
        let header = self.header();
        let id = header.message_id.clone();
        self.send(&arqon_proto::outbound::envelope(header, body))
            .await?;
        Ok(id)
    }

    /// Sends any WebSocket frame (text, junk bytes, an oversized frame, a close).
    pub async fn send_raw(&mut self, frame: WsMessage) -> Result<(), WsError> {
        self.socket.send(frame).await?;
        Ok(())
    }

    /// Joins `room`.
    pub async fn join(&mut self, room: &str) -> Result<String, WsError> {
        self.send_body(Join {
            room: room.to_owned(),
            ..Join::default()
        })
        .await
    }

    /// Leaves `room`.
    pub async fn leave(&mut self, room: &str) -> Result<String, WsError> {
        self.send_body(Leave {
            room: room.to_owned(),
        })
        .await
    }

    /// Publishes `payload` to `room` as `application/octet-stream`.
    pub async fn publish(&mut self, room: &str, payload: &[u8]) -> Result<String, WsError> {
        self.send_body(Publish {
            room: room.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            content_type: "application/octet-stream".to_owned(),
        })
        .await
    }

    /// Sends a fresh token over the open socket (in-band refresh).
    pub async fn refresh(&mut self, token: &str) -> Result<String, WsError> {
        self.send_body(Refresh {
            token: token.to_owned(),
        })
        .await
    }

    /// Sends an application-level ping.
    pub async fn ping(&mut self, nonce: u64) -> Result<String, WsError> {
        self.send_body(Ping { nonce }).await
    }

    /// The next envelope or close, waiting at most the default timeout.
    pub async fn recv(&mut self) -> Result<Incoming, WsError> {
        self.recv_timeout(self.timeout).await
    }

    /// The next envelope or close, waiting at most `timeout`. WebSocket pings are answered by the
    /// library and skipped.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Result<Incoming, WsError> {
        let next = async {
            loop {
                let Some(frame) = self.socket.next().await else {
                    return Err(WsError::Closed {
                        code: None,
                        reason: "connection ended without a close frame".into(),
                    });
                };
                match frame? {
                    WsMessage::Binary(bytes) => {
                        return Ok(Incoming::Envelope(Box::new(decode_envelope(
                            bytes, MAX_FRAME,
                        )?)));
                    }
                    WsMessage::Close(frame) => return Ok(close_of(frame)),
                    WsMessage::Text(_) => return Err(WsError::TextFrame),
                    WsMessage::Ping(_) | WsMessage::Pong(_) | WsMessage::Frame(_) => {}
                }
            }
        };
        tokio::time::timeout(timeout, next)
            .await
            .map_err(|_| WsError::Timeout(timeout))?
    }

    /// The next envelope that is not a server `Ping` (those are answered with a `Pong`).
    /// A close is an error naming its code.
    pub async fn recv_envelope(&mut self) -> Result<Envelope, WsError> {
        loop {
            match self.recv().await? {
                Incoming::Close { code, reason } => return Err(WsError::Closed { code, reason }),
                Incoming::Envelope(envelope) => match envelope.body {
                    Some(Body::Ping(Ping { nonce })) => {
                        self.send_body(Pong { nonce }).await?;
                    }
                    _ => return Ok(*envelope),
                },
            }
        }
    }

    /// The next envelope, which must have a body that `pick` accepts (named `want` in errors).
    pub async fn expect<T>(
        &mut self,
        want: &'static str,
        pick: impl Fn(Body) -> Option<T>,
    ) -> Result<(Header, T), WsError> {
        let envelope = loop {
            let envelope = self.recv_envelope().await?;
            // Presence notices arrive around joins; only an expect for presence sees them.
            let presence = matches!(
                envelope.body,
                Some(Body::PresenceUpdate(_) | Body::PresenceLeave(_))
            );
            if !presence || want.starts_with("presence") {
                break envelope;
            }
        };
        let header = envelope.header.unwrap_or_default();
        let got = envelope.body.as_ref().map_or("nothing", body_name);
        envelope
            .body
            .and_then(pick)
            .map(|body| (header, body))
            .ok_or(WsError::Unexpected { want, got })
    }

    /// Expects a delivered `Message`, with the server-stamped header.
    pub async fn expect_message(&mut self) -> Result<(Header, MessageBody), WsError> {
        self.expect("message", |b| match b {
            Body::Message(m) => Some(m),
            _ => None,
        })
        .await
    }

    expect_body!(
        /// Expects `Welcome`.
        expect_welcome, "welcome", Welcome, Welcome
    );
    expect_body!(
        /// Expects an `Error` envelope.
        expect_error, "error", Error, ErrorBody
    );
    expect_body!(
        /// Expects a `Pong`.
        expect_pong, "pong", Pong, Pong
    );
    expect_body!(
        /// Expects an `Ack`.
        expect_ack, "ack", Ack, Ack
    );
    expect_body!(
        /// Expects a `Drain` (reconnect elsewhere).
        expect_drain, "drain", Drain, Drain
    );
    expect_body!(
        /// Expects a `PresenceUpdate` (snapshot page or joins).
        expect_presence_update, "presence_update", PresenceUpdate, PresenceUpdate
    );
    expect_body!(
        /// Expects a `PresenceLeave`.
        expect_presence_leave, "presence_leave", PresenceLeave, PresenceLeave
    );

    /// Expects the server to close the connection; returns the close code and reason.
    /// Envelopes arriving before the close are skipped.
    pub async fn expect_close(&mut self) -> Result<(Option<u16>, String), WsError> {
        loop {
            match self.recv().await {
                Ok(Incoming::Close { code, reason }) | Err(WsError::Closed { code, reason }) => {
                    return Ok((code, reason));
                }
                Ok(Incoming::Envelope(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Closes the connection politely.
    pub async fn close(mut self) -> Result<(), WsError> {
        self.socket.close(None).await?;
        Ok(())
    }
}

fn close_of(frame: Option<CloseFrame>) -> Incoming {
    match frame {
        Some(frame) => Incoming::Close {
            code: Some(u16::from(frame.code)),
            reason: frame.reason.to_string(),
        },
        None => Incoming::Close {
            code: None,
            reason: String::new(),
        },
    }
}

//! Shared fixtures: one RSA key for the whole binary, node configs, a WebSocket client speaking arqon.v1.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arqon_auth::{Claims, DevKeys, Role};
use arqon_config::{Config, SpineKind};
use arqon_proto::names::{TenantId, UserId};
use arqon_proto::outbound::envelope;
use arqon_proto::v1::{self, Envelope, Header, envelope::Body};
use arqon_shield::Node;
use arqon_testkit::NatsServer;
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

pub(crate) fn keys() -> &'static DevKeys {
    static KEYS: OnceLock<DevKeys> = OnceLock::new();
    KEYS.get_or_init(|| DevKeys::generate().unwrap())
}

pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A dev token for `tenant`/`user` valid for `ttl_secs` from now.
pub(crate) fn token(tenant: &str, user: &str, ttl_secs: u64) -> String {
    let claims = Claims::dev(
        TenantId::parse(tenant).unwrap(),
        UserId::parse(user).unwrap(),
        Role::User,
        now_secs(),
        ttl_secs,
    );
    keys().mint(&claims).unwrap()
}

/// A token whose `exp` is already past.
pub(crate) fn expired_token(tenant: &str, user: &str) -> String {
    let mut claims = Claims::dev(
        TenantId::parse(tenant).unwrap(),
        UserId::parse(user).unwrap(),
        Role::User,
        now_secs() - 120,
        60,
    );
    claims.nbf = Some(now_secs() - 120);
    keys().mint(&claims).unwrap()
}

/// A dev-mode config on an ephemeral port, trusting [`keys`], with no clock leeway.
pub(crate) fn config() -> Config {
    let mut config = Config::dev_default();
    config.node.listen = "127.0.0.1:0".parse().unwrap();
    config.node.drain_timeout = arqon_config::Duration::from_secs(1);
    config.auth.jwks = Some(keys().to_jwks_json());
    config.auth.leeway = arqon_config::Duration::from_secs(0);
    config
}

/// Which spine a scenario runs on.
pub(crate) enum Bus {
    Embedded,
    Nats(Box<NatsServer>),
}

impl Bus {
    pub(crate) async fn both() -> Vec<Self> {
        vec![
            Self::Embedded,
            Self::Nats(Box::new(NatsServer::start_jetstream().await.unwrap())),
        ]
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Embedded => "embedded",
            Self::Nats(_) => "nats",
        }
    }

    pub(crate) fn apply(&self, config: &mut Config) {
        if let Self::Nats(server) = self {
            config.spine.kind = SpineKind::Nats;
            config.spine.nats_urls = vec![server.url()];
        }
    }
}

pub(crate) async fn start(config: Config) -> Node {
    Node::start(config).await.unwrap()
}

pub(crate) type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client speaking arqon.v1.
pub(crate) struct Client {
    pub(crate) ws: Ws,
    next: u64,
}

/// The HTTP status of a refused upgrade, with its `Retry-After`.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) status: u16,
    pub(crate) retry_after: Option<String>,
}

pub(crate) async fn connect_with(
    node: &Node,
    header: Option<(&str, String)>,
) -> Result<(Client, Option<String>), Refused> {
    let mut request = node.socket_url().into_client_request().unwrap();
    if let Some((name, value)) = header {
        request.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((ws, response)) => {
            let protocol = response
                .headers()
                .get("sec-websocket-protocol")
                .map(|v| v.to_str().unwrap().to_owned());
            Ok((Client { ws, next: 0 }, protocol))
        }
        Err(tungstenite::Error::Http(response)) => Err(Refused {
            status: response.status().as_u16(),
            retry_after: response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned()),
        }),
        Err(other) => panic!("connect failed: {other}"),
    }
}

/// Connects with a bearer token and returns the client after its `Welcome`.
pub(crate) async fn connect(node: &Node, token: &str) -> (Client, v1::Welcome) {
    let (mut client, _) = connect_with(node, Some(("authorization", format!("Bearer {token}"))))
        .await
        .unwrap();
    let welcome = client
        .expect(|body| match body {
            Body::Welcome(w) => Some(w.clone()),
            _ => None,
        })
        .await;
    (client, welcome)
}

pub(crate) fn room(name: &str) -> arqon_proto::names::RoomName {
    arqon_proto::names::RoomName::parse(name).unwrap()
}

impl Client {
    /// Sends a body with a fresh correlation id; returns the id.
    pub(crate) async fn send(&mut self, body: impl Into<Body>) -> String {
        self.next += 1;
        let correlation = format!("c{}", self.next);
        let header = Header {
            protocol_version: 1,
            correlation_id: correlation.clone(),
            ..Header::default()
        };
        let bytes = envelope(header, body).encode_to_vec();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
        correlation
    }

    pub(crate) async fn send_raw(&mut self, message: Message) {
        self.ws.send(message).await.unwrap();
    }

    /// Reads envelopes until `pick` returns `Some`, skipping others; panics after [`WAIT`].
    pub(crate) async fn expect<T>(&mut self, mut pick: impl FnMut(&Body) -> Option<T>) -> T {
        let mut found = None;
        self.expect_envelope(|envelope| {
            found = envelope.body.as_ref().and_then(&mut pick);
            found.is_some()
        })
        .await;
        found.unwrap()
    }

    /// Reads envelopes until one satisfies `pick`, skipping others; panics after [`WAIT`].
    pub(crate) async fn expect_envelope(
        &mut self,
        mut pick: impl FnMut(&Envelope) -> bool,
    ) -> Envelope {
        tokio::time::timeout(WAIT, async {
            loop {
                let envelope = self
                    .next_envelope()
                    .await
                    .expect("socket closed while waiting");
                if pick(&envelope) {
                    return envelope;
                }
            }
        })
        .await
        .expect("expected envelope did not arrive in time")
    }

    /// The next envelope, or `None` once the socket is closed.
    pub(crate) async fn next_envelope(&mut self) -> Option<Envelope> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Binary(bytes)) => return Some(Envelope::decode(bytes).unwrap()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Reads until the server closes; returns the close code (skipping other frames).
    pub(crate) async fn closed(&mut self) -> Option<u16> {
        tokio::time::timeout(WAIT, async {
            loop {
                match self.ws.next().await {
                    Some(Ok(Message::Close(frame))) => {
                        return frame.map(|f| u16::from(f.code));
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => return None,
                }
            }
        })
        .await
        .expect("server did not close in time")
    }

    pub(crate) async fn join(&mut self, name: &str) {
        let correlation = self
            .send(v1::Join {
                room: name.to_owned(),
                metadata: std::collections::BTreeMap::new(),
                since: None,
            })
            .await;
        self.expect_ack(&correlation).await;
    }

    /// Waits for the reply to `correlation` and asserts it is an `Ack`.
    pub(crate) async fn expect_ack(&mut self, correlation: &str) {
        let reply = self.expect_reply(correlation).await;
        assert!(matches!(reply, Body::Ack(_)), "{correlation}: {reply:?}");
    }

    /// Waits for the `Ack`, `Pong`, `HistoryPage` or `Error` answering `correlation`.
    pub(crate) async fn expect_reply(&mut self, correlation: &str) -> Body {
        self.expect_envelope(|envelope| {
            matches!(
                envelope.body,
                Some(Body::Ack(_) | Body::Error(_) | Body::Pong(_) | Body::HistoryPage(_))
            ) && envelope
                .header
                .as_ref()
                .is_some_and(|h| h.correlation_id == correlation)
        })
        .await
        .body
        .unwrap()
    }

    pub(crate) async fn publish(&mut self, name: &str, payload: &[u8]) -> String {
        self.send(v1::Publish {
            room: name.to_owned(),
            payload: Bytes::copy_from_slice(payload),
            content_type: "text/plain".to_owned(),
        })
        .await
    }

    /// The payload of the next delivered message, skipping other envelopes.
    pub(crate) async fn next_message(&mut self) -> Bytes {
        self.expect(|body| match body {
            Body::Message(m) => Some(m.payload.clone()),
            _ => None,
        })
        .await
    }

    /// Waits for a delivered message whose payload is `payload`; returns the envelope.
    pub(crate) async fn expect_message(&mut self, payload: &[u8]) -> Envelope {
        self.expect_envelope(
            |envelope| matches!(&envelope.body, Some(Body::Message(m)) if m.payload == payload),
        )
        .await
    }

    /// Waits for an `Error` and returns its code and the header's correlation id.
    pub(crate) async fn expect_error(&mut self) -> (v1::ErrorCode, v1::Error) {
        self.expect(|body| match body {
            Body::Error(e) => Some((e.code(), e.clone())),
            _ => None,
        })
        .await
    }
}

/// `GET path` on the node; returns the status and the body.
pub(crate) async fn http_get(node: &Node, path: &str) -> (u16, String) {
    let (status, _, body) = http_get_head(node, path).await;
    (status, body)
}

/// `GET path` on the node; returns the status, the response head and the body.
pub(crate) async fn http_get_head(node: &Node, path: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = TcpStream::connect(node.local_addr()).await.unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut text = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut text))
        .await
        .unwrap()
        .unwrap();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_owned(), body.to_owned())
}

/// This thread's spans exported to `receiver` for as long as it lives (the node's own sampler is
/// set by its config's `[telemetry]`, this only installs the subscriber).
pub(crate) struct Exporting {
    pub(crate) telemetry: arqon_telemetry::Telemetry,
    _guard: tracing::subscriber::DefaultGuard,
    _second: tracing::Dispatch,
}

/// Installs an exporting subscriber on this thread (test runtimes are single-threaded, so every
/// node task runs under it).
pub(crate) fn export_to(receiver: &arqon_testkit::OtlpReceiver) -> Exporting {
    let telemetry_config = arqon_config::TelemetryConfig {
        otlp_endpoint: Some(receiver.url().to_owned()),
        log_level: "warn".to_owned(),
        ..arqon_config::TelemetryConfig::default()
    };
    let (subscriber, telemetry) =
        arqon_telemetry::subscriber(&telemetry_config, "arqonbus-test", std::io::sink, false)
            .unwrap();
    let guard = tracing::subscriber::set_default(subscriber);
    // Other tests of this binary run on other threads without a subscriber. With a single
    // registered dispatcher, tracing-core computes a new callsite's interest from the registering
    // thread's default alone, so a callsite first hit on another thread would be cached as
    // disabled here; a second registered dispatcher makes it ask every registered one.
    let second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    tracing::callsite::rebuild_interest_cache();
    Exporting {
        telemetry,
        _guard: guard,
        _second: second,
    }
}

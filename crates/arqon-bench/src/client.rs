//! Lean benchmark clients for the two systems under test: ArqonBus and nats-server's WebSocket listener.
//!
//! Both expose the same operations (connect, join a room, publish, receive payloads), so every
//! scenario runs the same workload against each. Received payloads go to a channel; the reader
//! task forwards acknowledgements so a scenario can wait for them.

use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use arqon_proto::v1::{Envelope, Header, Join, Publish, envelope::Body};
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt as _, StreamExt as _};
use prost::Message as _;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::{Message as WsMessage, http::HeaderValue};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Which system a client talks to.
#[derive(Clone, Debug)]
pub(crate) enum Target {
    /// An ArqonBus node: its socket URL and a token for every client.
    Arqon { url: String, token: String },
    /// nats-server's WebSocket listener.
    NatsWs { url: String },
}

impl Target {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Self::Arqon { .. } => "arqonbus",
            Self::NatsWs { .. } => "nats-ws",
        }
    }
}

/// An open, ready connection (ArqonBus: `Welcome` received; NATS: `PONG` after `CONNECT`).
pub(crate) struct Conn {
    target: Target,
    sink: SplitSink<Ws, WsMessage>,
    /// Payloads of delivered messages, in arrival order.
    pub(crate) deliveries: mpsc::UnboundedReceiver<Bytes>,
    /// One unit per control reply (ArqonBus `Ack`, NATS `PONG`).
    replies: mpsc::UnboundedReceiver<()>,
    next_id: u64,
}

const TIMEOUT: Duration = Duration::from_secs(20);

impl Conn {
    /// Opens a connection and waits until it is ready.
    pub(crate) async fn open(target: &Target) -> anyhow::Result<Self> {
        let url = match target {
            Target::Arqon { url, .. } | Target::NatsWs { url } => url,
        };
        let mut request = url.as_str().into_client_request()?;
        if let Target::Arqon { token, .. } = target {
            request.headers_mut().insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {token}"))?,
            );
            // As the SDKs do: take batch frames (several envelopes in one frame).
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(arqon_proto::batch::SUBPROTOCOL),
            );
        }
        // Nagle off, as browsers and the SDKs do: a small publish leaves at once.
        let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
        let (ws, _) = tokio::time::timeout(TIMEOUT, connect)
            .await
            .context("connect timed out")??;
        let (sink, mut stream) = ws.split();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (deliveries_tx, deliveries) = mpsc::unbounded_channel();
        let (replies_tx, replies) = mpsc::unbounded_channel();
        match target {
            Target::Arqon { .. } => {
                tokio::spawn(read_arqon(stream, ready_tx, deliveries_tx, replies_tx));
            }
            Target::NatsWs { .. } => {
                // INFO arrives first; the reader then parses MSG/PONG/PING.
                let first = tokio::time::timeout(TIMEOUT, stream.next())
                    .await
                    .context("no INFO from nats")?
                    .ok_or_else(|| anyhow!("nats closed before INFO"))??;
                if !first.into_data().starts_with(b"INFO") {
                    bail!("nats did not start with INFO");
                }
                tokio::spawn(read_nats(stream, deliveries_tx, replies_tx));
                let _ = ready_tx.send(());
            }
        }
        let mut conn = Self {
            target: target.clone(),
            sink,
            deliveries,
            replies,
            next_id: 1,
        };
        if let Target::NatsWs { .. } = target {
            conn.send_nats(
                "CONNECT {\"verbose\":false,\"pedantic\":false,\"protocol\":1}\r\nPING\r\n",
            )
            .await?;
            conn.wait_reply().await?;
        } else {
            tokio::time::timeout(TIMEOUT, ready_rx)
                .await
                .context("no Welcome")?
                .map_err(|_| anyhow!("closed before Welcome"))?;
        }
        Ok(conn)
    }

    async fn send_nats(&mut self, text: &str) -> anyhow::Result<()> {
        self.sink
            .send(WsMessage::Binary(Bytes::copy_from_slice(text.as_bytes())))
            .await?;
        Ok(())
    }

    async fn wait_reply(&mut self) -> anyhow::Result<()> {
        tokio::time::timeout(TIMEOUT, self.replies.recv())
            .await
            .context("no reply")?
            .ok_or_else(|| anyhow!("connection closed"))
    }

    fn header(&mut self) -> Header {
        self.next_id += 1;
        Header {
            protocol_version: 1,
            correlation_id: format!("b-{}", self.next_id),
            ..Header::default()
        }
    }

    /// Joins (ArqonBus) or subscribes to (NATS) `room`, and waits until it is live.
    pub(crate) async fn join(&mut self, room: &str) -> anyhow::Result<()> {
        match self.target {
            Target::Arqon { .. } => {
                let envelope = Envelope {
                    header: Some(self.header()),
                    body: Some(Body::Join(Join {
                        room: room.to_owned(),
                        metadata: std::collections::BTreeMap::default(),
                        since: None,
                    })),
                };
                self.sink
                    .send(WsMessage::Binary(Bytes::from(envelope.encode_to_vec())))
                    .await?;
            }
            Target::NatsWs { .. } => {
                // SUB then PING: the PONG proves the subscription is live.
                self.send_nats(&format!("SUB {room} 1\r\nPING\r\n")).await?;
            }
        }
        self.wait_reply().await
    }

    /// Sends one publish without waiting for its acknowledgement.
    pub(crate) async fn publish(&mut self, room: &str, payload: Bytes) -> anyhow::Result<()> {
        let frame = self.encode_publish(room, payload);
        self.sink.send(WsMessage::Binary(frame)).await?;
        Ok(())
    }

    /// The wire frame of one publish.
    fn encode_publish(&mut self, room: &str, payload: Bytes) -> Bytes {
        match self.target {
            Target::Arqon { .. } => {
                let envelope = Envelope {
                    header: Some(self.header()),
                    body: Some(Body::Publish(Publish {
                        room: room.to_owned(),
                        payload,
                        content_type: String::new(),
                    })),
                };
                Bytes::from(envelope.encode_to_vec())
            }
            Target::NatsWs { .. } => {
                let mut frame = format!("PUB {room} {}\r\n", payload.len()).into_bytes();
                frame.extend_from_slice(&payload);
                frame.extend_from_slice(b"\r\n");
                Bytes::from(frame)
            }
        }
    }

    /// Waits until the server has processed the last `published` publishes: their `Ack`s (ArqonBus),
    /// or a `PING`'s `PONG` (NATS answers in order). A publisher that syncs every batch cannot run
    /// unboundedly ahead of the server.
    pub(crate) async fn sync(&mut self, published: usize) -> anyhow::Result<()> {
        match self.target {
            Target::Arqon { .. } => {
                for _ in 0..published {
                    self.wait_reply().await?;
                }
                Ok(())
            }
            Target::NatsWs { .. } => {
                self.send_nats("PING\r\n").await?;
                self.wait_reply().await
            }
        }
    }

    /// Closes the connection.
    pub(crate) async fn close(mut self) {
        let _ = self.sink.close().await;
    }
}

async fn read_arqon(
    mut stream: SplitStream<Ws>,
    ready: tokio::sync::oneshot::Sender<()>,
    deliveries: mpsc::UnboundedSender<Bytes>,
    replies: mpsc::UnboundedSender<()>,
) {
    let mut ready = Some(ready);
    while let Some(Ok(frame)) = stream.next().await {
        let WsMessage::Binary(data) = frame else {
            continue;
        };
        let Ok(envelope) = Envelope::decode(data) else {
            continue;
        };
        if let Some(Body::Batch(batch)) = envelope.body {
            for envelope in batch.envelopes {
                on_arqon(envelope.body, &mut ready, &deliveries, &replies);
            }
        } else {
            on_arqon(envelope.body, &mut ready, &deliveries, &replies);
        }
    }
}

fn on_arqon(
    body: Option<Body>,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    deliveries: &mpsc::UnboundedSender<Bytes>,
    replies: &mpsc::UnboundedSender<()>,
) {
    match body {
        Some(Body::Welcome(_)) => {
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
        }
        Some(Body::Message(message)) => {
            let _ = deliveries.send(message.payload);
        }
        Some(Body::Ack(_) | Body::Error(_)) => {
            let _ = replies.send(());
        }
        _ => {}
    }
}

/// Parses the NATS text protocol from binary WebSocket frames (a frame may hold several commands,
/// and a command may span frames).
async fn read_nats(
    mut stream: SplitStream<Ws>,
    deliveries: mpsc::UnboundedSender<Bytes>,
    replies: mpsc::UnboundedSender<()>,
) {
    let mut buf: Vec<u8> = Vec::new();
    while let Some(Ok(frame)) = stream.next().await {
        buf.extend_from_slice(&frame.into_data());
        while let Some(line_end) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = &buf[..line_end];
            if line.starts_with(b"MSG ") {
                // MSG <subject> <sid> [reply-to] <#bytes>
                let size = std::str::from_utf8(line)
                    .ok()
                    .and_then(|l| l.rsplit(' ').next())
                    .and_then(|n| n.parse::<usize>().ok());
                let Some(size) = size else { return };
                let start = line_end + 2;
                if buf.len() < start + size + 2 {
                    break; // wait for the rest of the payload
                }
                let _ = deliveries.send(Bytes::copy_from_slice(&buf[start..start + size]));
                buf.drain(..start + size + 2);
                continue;
            }
            // Server PINGs go unanswered: scenarios are far shorter than nats' ping timeout.
            if line.starts_with(b"PONG") {
                let _ = replies.send(());
            }
            buf.drain(..line_end + 2);
        }
    }
}

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
    /// Control replies (ArqonBus `Ack`, NATS `PONG`), counted per frame by the reader.
    replies: Replies,
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
            replies: Replies {
                counts: replies,
                banked: 0,
            },
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
        self.replies.wait(1).await
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
            Target::Arqon { .. } => self.replies.wait(published).await,
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
    replies: mpsc::UnboundedSender<usize>,
) {
    let mut ready = Some(ready);
    while let Some(Ok(frame)) = stream.next().await {
        let WsMessage::Binary(data) = frame else {
            continue;
        };
        let Ok(frame) = view::Frame::decode(data) else {
            continue;
        };
        let mut replies_in_frame = 0;
        if let Some(view::Body::Batch(batch)) = frame.body {
            for frame in batch.envelopes {
                replies_in_frame += on_arqon(frame.body, &mut ready, &deliveries);
            }
        } else {
            replies_in_frame += on_arqon(frame.body, &mut ready, &deliveries);
        }
        if replies_in_frame > 0 {
            let _ = replies.send(replies_in_frame);
        }
    }
}

/// Handles one envelope; returns 1 for a control reply (`Ack` or `Error`), else 0.
fn on_arqon(
    body: Option<view::Body>,
    ready: &mut Option<tokio::sync::oneshot::Sender<()>>,
    deliveries: &mpsc::UnboundedSender<Bytes>,
) -> usize {
    match body {
        Some(view::Body::Welcome(_)) => {
            if let Some(tx) = ready.take() {
                let _ = tx.send(());
            }
            0
        }
        Some(view::Body::Message(message)) => {
            let _ = deliveries.send(message.payload);
            0
        }
        Some(view::Body::Ack(_) | view::Body::Error(_)) => 1,
        Some(view::Body::Batch(_)) | None => 0,
    }
}

/// The control replies a reader has counted: it sends one count per frame, not one message per
/// reply, so a publisher syncing on 256 acks wakes once per frame of acks (the load generator
/// shares the cores with the server it measures; NATS answers a batch with one `PONG`).
struct Replies {
    counts: mpsc::UnboundedReceiver<usize>,
    /// Replies received beyond those already waited for.
    banked: usize,
}

impl Replies {
    /// Waits until `n` more replies have arrived.
    async fn wait(&mut self, n: usize) -> anyhow::Result<()> {
        while self.banked < n {
            let count = tokio::time::timeout(TIMEOUT, self.counts.recv())
                .await
                .context("no reply")?
                .ok_or_else(|| anyhow!("connection closed"))?;
            self.banked += count;
        }
        self.banked -= n;
        Ok(())
    }
}

/// What the load client reads of a server frame: which body it carries and a delivery's payload.
/// The header and the other fields are skipped by tag, not decoded, as the NATS client reads only
/// a `MSG` line's size and the payload behind it (it never builds the subject). The field numbers
/// are `arqon.v1.Envelope`'s; the SDKs decode the whole envelope.
mod view {
    use bytes::Bytes;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Frame {
        #[prost(oneof = "Body", tags = "18, 30, 31, 35, 38")]
        pub(super) body: Option<Body>,
    }

    #[derive(Clone, PartialEq, prost::Oneof)]
    pub(super) enum Body {
        #[prost(message, tag = "18")]
        Ack(Skipped),
        #[prost(message, tag = "30")]
        Welcome(Skipped),
        #[prost(message, tag = "31")]
        Message(Delivery),
        #[prost(message, tag = "35")]
        Error(Skipped),
        #[prost(message, tag = "38")]
        Batch(Batch),
    }

    /// A body whose content the load client does not need.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Skipped {}

    /// `arqon.v1.Message`: only the payload.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Delivery {
        #[prost(bytes = "bytes", tag = "2")]
        pub(super) payload: Bytes,
    }

    /// `arqon.v1.Batch`.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct Batch {
        #[prost(message, repeated, tag = "1")]
        pub(super) envelopes: Vec<Frame>,
    }
}

/// Parses the NATS text protocol from binary WebSocket frames (a frame may hold several commands,
/// and a command may span frames).
async fn read_nats(
    mut stream: SplitStream<Ws>,
    deliveries: mpsc::UnboundedSender<Bytes>,
    replies: mpsc::UnboundedSender<usize>,
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
                let _ = replies.send(1);
            }
            buf.drain(..line_end + 2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arqon_proto::v1::{Ack, Message};

    fn message(n: u64) -> Bytes {
        let envelope = Envelope {
            header: Some(Header {
                protocol_version: 1,
                message_id: format!("m-{n}"),
                tenant_id: "bench".to_owned(),
                ..Header::default()
            }),
            body: Some(Body::Message(Message {
                room: "r".to_owned(),
                payload: Bytes::from(format!("payload {n}")),
                ..Message::default()
            })),
        };
        // As delivered: the stored position merged in behind the encoded message.
        arqon_proto::outbound::with_position(&envelope.encode_to_vec(), n, "epoch")
    }

    #[test]
    fn the_view_reads_the_payload_and_kind_the_full_decoder_reads() {
        let ack = Bytes::from(
            Envelope {
                header: Some(Header::default()),
                body: Some(Body::Ack(Ack::default())),
            }
            .encode_to_vec(),
        );
        let frames = [message(1), ack.clone(), message(2)];
        let batch = arqon_proto::batch::encode(&frames);
        let viewed = match view::Frame::decode(batch).unwrap().body {
            Some(view::Body::Batch(batch)) => batch.envelopes,
            other => panic!("{other:?}"),
        };
        assert_eq!(viewed.len(), 3);
        for (frame, view) in frames.iter().zip(viewed) {
            let full = Envelope::decode(frame.clone()).unwrap().body;
            match (full, view.body) {
                (Some(Body::Message(m)), Some(view::Body::Message(v))) => {
                    assert_eq!(m.payload, v.payload);
                }
                (Some(Body::Ack(_)), Some(view::Body::Ack(_))) => {}
                other => panic!("{other:?}"),
            }
        }
    }
}

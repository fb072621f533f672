//! A real OTLP/HTTP trace receiver for tests: listens on a free port, decodes every
//! `POST /v1/traces` protobuf body (`ExportTraceServiceRequest`) and hands the spans over a channel.

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, any_value};
use prost::Message as _;

/// Largest request body accepted.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One span as the receiver decoded it; ids in lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceivedSpan {
    /// The span name.
    pub name: String,
    /// The trace id (32 hex digits).
    pub trace_id: String,
    /// The span id (16 hex digits).
    pub span_id: String,
    /// The parent span id, empty for a root span.
    pub parent_span_id: String,
    /// The resource's `service.name`.
    pub service: String,
    /// The span's attributes, rendered as text.
    pub attributes: BTreeMap<String, String>,
}

/// The receiver: its URL (give it as `otlp_endpoint`) and the spans it decoded.
#[derive(Debug)]
pub struct OtlpReceiver {
    url: String,
    spans: mpsc::Receiver<ReceivedSpan>,
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Reads one HTTP/1.1 request; returns its request line and body.
fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        raw.extend_from_slice(&buf[..n]);
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&raw[..end]).to_lowercase();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if length > MAX_BODY {
            return None;
        }
        if raw.len() >= end + 4 + length {
            let line = head.lines().next().unwrap_or_default().to_owned();
            return Some((line, raw[end + 4..end + 4 + length].to_vec()));
        }
    }
}

fn serve(listener: &TcpListener, spans: &mpsc::Sender<ReceivedSpan>) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let decoded = read_request(&mut stream)
            .filter(|(line, _)| line.starts_with("post /v1/traces "))
            .and_then(|(_, body)| ExportTraceServiceRequest::decode(&body[..]).ok());
        let status = if decoded.is_some() {
            "200 OK"
        } else {
            "400 Bad Request"
        };
        for resource in decoded.map(|r| r.resource_spans).unwrap_or_default() {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .map(|kv| text(kv.value.as_ref()))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                let received = ReceivedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    service: service.clone(),
                    attributes: span
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
                        .collect(),
                };
                if spans.send(received).is_err() {
                    return;
                }
            }
        }
        let reply = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        let _ = stream.write_all(reply.as_bytes());
    }
}

impl OtlpReceiver {
    /// Starts the receiver on `127.0.0.1` and a free port, on its own thread.
    pub fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let (tx, spans) = mpsc::channel();
        std::thread::spawn(move || serve(&listener, &tx));
        Ok(Self { url, spans })
    }

    /// The base URL (`http://127.0.0.1:<port>`); exporters append `/v1/traces`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Collects spans until `done` holds for those `keep` selected, or `timeout` passes; returns the
    /// kept spans either way.
    pub fn collect(
        &self,
        timeout: Duration,
        keep: impl Fn(&ReceivedSpan) -> bool,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        let mut kept = Vec::new();
        while !done(&kept) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            match self.spans.recv_timeout(left) {
                Ok(span) if keep(&span) => kept.push(span),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        kept
    }
}

//! W3C trace context (`traceparent`/`tracestate`) between `tracing` spans and the wire: parse and
//! format it, continue a remote trace, and read a span's own context to send on. Shared by the Shield
//! (envelope and spine headers) and the Brain (replication messages on the spine).

use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// A parsed W3C `traceparent` (version 00 layout).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (never all zero).
    pub span_id: [u8; 8],
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

/// Lower-case hex digits, by nibble.
const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// The value of one lower-case hex digit.
fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// Exactly `2 * N` lower-case hex digits as `N` bytes. Runs on every traced message, so it decodes
/// by table rather than through `from_str_radix`.
fn hex_bytes<const N: usize>(text: &str) -> Option<[u8; N]> {
    let bytes = text.as_bytes();
    if bytes.len() != 2 * N {
        return None;
    }
    let mut out = [0; N];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *slot = (nibble(pair[0])? << 4) | nibble(pair[1])?;
    }
    Some(out)
}

impl TraceParent {
    /// Parses `vv-<32 hex>-<16 hex>-<2 hex>`, lower case, ids not all zero, version not `ff`.
    pub fn parse(text: &str) -> Option<Self> {
        let mut parts = text.split('-');
        let version: [u8; 1] = hex_bytes(parts.next()?)?;
        let trace_id: [u8; 16] = hex_bytes(parts.next()?)?;
        let span_id: [u8; 8] = hex_bytes(parts.next()?)?;
        let [flags] = hex_bytes::<1>(parts.next()?)?;
        let extra = parts.next();
        let valid = version != [0xff]
            && (extra.is_none() || version != [0])
            && trace_id != [0; 16]
            && span_id != [0; 8];
        valid.then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// Whether the sender sampled this trace (flags bit 0).
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }

    /// The trace id as 32 lower-case hex digits.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX_DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(HEX_DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

/// Makes `traceparent` (and `tracestate`) the remote parent of `span`; malformed values are ignored
/// and the span starts its own trace. Then records the span's `trace_id` field.
pub fn continue_trace(span: &Span, traceparent: Option<&str>, tracestate: Option<&str>) {
    if let Some(parent) = traceparent.and_then(TraceParent::parse) {
        let state = tracestate
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.span_id),
            TraceFlags::new(parent.flags),
            true,
            state,
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    if let Some(own) = span_traceparent(span) {
        span.record("trace_id", own.trace_id_hex());
    }
}

/// The `traceparent` of `span` itself (so a receiver continues under it), when it has a valid context.
pub fn span_traceparent(span: &Span) -> Option<TraceParent> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| TraceParent {
        trace_id: span_context.trace_id().to_bytes(),
        span_id: span_context.span_id().to_bytes(),
        flags: span_context.trace_flags().to_u8(),
    })
}

/// The `tracestate` of `span`, empty when none.
pub fn span_tracestate(span: &Span) -> String {
    span.context().span().span_context().trace_state().header()
}

//! W3C trace context on spine messages: the current span's context into a message's headers, and
//! a received message's headers into a span that continues its trace.

use arqon_spine::{Headers, TRACEPARENT, TRACESTATE};
use arqon_telemetry::trace::{continue_trace, span_traceparent, span_tracestate};

/// `headers` with the current span's `traceparent` (and `tracestate`) added, when the current
/// span belongs to a trace; unchanged otherwise.
pub fn with_current_trace(mut headers: Headers) -> Headers {
    let span = tracing::Span::current();
    if let Some(parent) = span_traceparent(&span) {
        let _ = headers.insert(TRACEPARENT, &parent.to_string());
        let state = span_tracestate(&span);
        if !state.is_empty() {
            let _ = headers.insert(TRACESTATE, &state);
        }
    }
    headers
}

/// Makes `span` continue the trace a received message's headers carry; false (and `span` left
/// as it is) when they carry none.
pub fn continue_from(span: &tracing::Span, headers: &Headers) -> bool {
    match headers.get(TRACEPARENT) {
        Some(parent) => {
            continue_trace(span, Some(parent), headers.get(TRACESTATE));
            true
        }
        None => false,
    }
}

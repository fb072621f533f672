//! Observability of a Shield node beyond its plain counters: latency histograms, two-label and
//! cross-component metrics, the spans of `specs/observability.md`, and W3C trace-context helpers
//! that carry one trace across the envelope header and the spine's NATS headers.
//!
//! Spans are ordinary `tracing` spans at `info`; `arqon-telemetry` exports them through
//! OpenTelemetry. Fields hold sizes, ids and fixed-set reasons only: never a token or a payload.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use arqon_core::sampling::{Kept, TraceBudget, TraceSampler};
use arqon_core::session::{ErrorCode, PolicyVerdict};
use arqon_spine::{Headers, Message, TRACEPARENT, TRACESTATE};
use tracing::Span;

use crate::counters::LabelledCounter;

/// The spine header carrying the publish time (µs since the epoch) for the publish-to-deliver histogram.
pub const PUBLISHED_US: &str = "arqon-published-us";

/// Histogram bucket upper bounds, in seconds.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A latency histogram over [`LATENCY_BUCKETS`], lock-free.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per-bucket (not cumulative) counts; the last slot is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// Records one sample.
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Samples recorded so far.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        if let Some(last) = self.buckets.last() {
            cumulative += last.load(Ordering::Relaxed);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        #[allow(clippy::cast_precision_loss)] // µs sums stay far below 2^52 for years of uptime
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {}", self.count());
    }
}

/// A counter keyed by two fixed labels.
#[derive(Debug, Default)]
pub struct PairCounter(Mutex<BTreeMap<(&'static str, &'static str), u64>>);

impl PairCounter {
    /// Adds one to `(first, second)`.
    pub fn inc(&self, first: &'static str, second: &'static str) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry((first, second)).or_insert(0) += 1;
        }
    }

    /// The count of `(first, second)`.
    pub fn get(&self, first: &str, second: &str) -> u64 {
        self.0.lock().map_or(0, |counts| {
            counts
                .iter()
                .find(|((a, b), _)| *a == first && *b == second)
                .map_or(0, |(_, n)| *n)
        })
    }

    fn snapshot(&self) -> Vec<((&'static str, &'static str), u64)> {
        self.0
            .lock()
            .map(|counts| counts.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }
}

/// The catalogue's metrics that are not plain Shield counters (`specs/observability.md`).
#[derive(Debug, Default)]
pub struct Observability {
    /// `arqonbus.shield.connects{outcome,reason}`.
    pub connects: PairCounter,
    /// `arqonbus.shield.handshake_seconds`.
    pub handshake: Histogram,
    /// `arqonbus.shield.deliver_latency_seconds`.
    pub deliver_latency: Histogram,
    /// `arqonbus.policy.verdicts{verdict}`.
    pub policy_verdicts: LabelledCounter,
    /// `arqonbus.policy.duration_seconds`.
    pub policy_duration: Histogram,
    /// `arqonbus.presence.members`.
    pub presence_members: AtomicU64,
    /// `arqonbus.spine.errors{op}`.
    pub spine_errors: LabelledCounter,
    /// While traces are exported: which publishes get the message path's spans (none: every one
    /// does, when spans are on at all).
    pub sampler: Option<TraceSampler>,
    /// The per-second cap on what the sampler keeps.
    pub trace_budget: Mutex<Option<TraceBudget>>,
    /// `arqonbus.shield.traces_sampled{reason}`: publishes whose spans were built, by why.
    pub traces_sampled: LabelledCounter,
}

/// Connect outcomes (`arqonbus.shield.connects{outcome}`).
pub mod outcome {
    /// Upgraded.
    pub const ACCEPTED: &str = "accepted";
    /// Refused with 401.
    pub const UNAUTHORIZED: &str = "unauthorized";
    /// Refused with 503 (admission, caps, draining).
    pub const REJECTED: &str = "rejected";
}

impl Observability {
    /// Counts one upgrade attempt and records it on the current `shield.connect` span.
    pub fn connect(&self, outcome: &'static str, reason: &'static str) {
        self.connects.inc(outcome, reason);
        let span = Span::current();
        span.record("outcome", outcome);
        span.record("reason", reason);
    }

    /// Counts an accepted upgrade and records its tenant on the current `shield.connect` span.
    pub fn connected(&self, tenant: &str) {
        self.connect(outcome::ACCEPTED, "ok");
        Span::current().record("tenant", tenant);
    }

    /// Counts one policy-chain run: its verdict, its duration, and the verdict on its span.
    pub fn policy_checked(&self, span: &Span, elapsed: Duration, verdict: &PolicyVerdict) {
        let label = verdict_label(verdict);
        self.policy_verdicts.inc(label);
        self.policy_duration.observe(elapsed);
        span.record("verdict", label);
    }

    /// Whether a publish gets its spans: `None` for no, else why (counted). `parent` is the sampled
    /// flag of the client's `traceparent`, when it sent a valid one. Spans must be on
    /// ([`message_spans_on`]); without a sampler every publish gets them.
    pub fn sample(&self, parent: Option<bool>, session: u64, request: u64) -> Option<Kept> {
        let kept = match &self.sampler {
            Some(sampler) => sampler.head(parent, session, request)?,
            None => return Some(Kept::Ratio),
        };
        // Locked only for the publishes the head decision keeps. A poisoned lock keeps nothing.
        let admitted = self.trace_budget.lock().is_ok_and(|mut budget| {
            budget
                .as_mut()
                .is_none_or(|budget| budget.admit(crate::clock::now_us()))
        });
        if !admitted {
            return None;
        }
        self.traces_sampled.inc(kept.as_str());
        Some(kept)
    }

    /// Whether a message taken off the spine gets its receive spans: without a sampler always
    /// (when spans are on); with one, only when its `traceparent` says the publisher sampled it.
    pub fn receive_sampled(&self, message: &Message) -> bool {
        self.sampler.is_none()
            || TraceSampler::receive(
                message
                    .headers
                    .get(TRACEPARENT)
                    .and_then(TraceParent::parse)
                    .map(|parent| parent.sampled()),
            )
    }

    /// A presence join handed to the Brain.
    pub fn presence_joined(&self) {
        self.presence_members.fetch_add(1, Ordering::Relaxed);
    }

    /// A presence leave handed to the Brain (never below zero).
    pub fn presence_left(&self) {
        let _ = self
            .presence_members
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// Appends the Prometheus text of these metrics.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP arqonbus_shield_connects upgrade attempts by outcome and reason"
        );
        let _ = writeln!(out, "# TYPE arqonbus_shield_connects counter");
        for ((outcome, reason), count) in self.connects.snapshot() {
            let _ = writeln!(
                out,
                "arqonbus_shield_connects{{outcome=\"{outcome}\",reason=\"{reason}\"}} {count}"
            );
        }
        self.handshake.render(
            out,
            "arqonbus_shield_handshake_seconds",
            "upgrade request to session start",
        );
        self.deliver_latency.render(
            out,
            "arqonbus_shield_deliver_latency_seconds",
            "publish stamped to delivery queued on this node",
        );
        render_fixed(
            out,
            (
                "arqonbus_policy_verdicts",
                "verdict",
                "policy chain verdicts",
            ),
            &self.policy_verdicts,
            &VERDICTS,
        );
        self.policy_duration.render(
            out,
            "arqonbus_policy_duration_seconds",
            "policy chain run time per publish",
        );
        let _ = writeln!(
            out,
            "# HELP arqonbus_presence_members room memberships of this node's sessions"
        );
        let _ = writeln!(out, "# TYPE arqonbus_presence_members gauge");
        let _ = writeln!(
            out,
            "arqonbus_presence_members {}",
            self.presence_members.load(Ordering::Relaxed)
        );
        render_fixed(
            out,
            (
                "arqonbus_spine_errors",
                "op",
                "spine operations that failed",
            ),
            &self.spine_errors,
            &SPINE_OPS,
        );
        render_fixed(
            out,
            (
                "arqonbus_shield_traces_sampled",
                "reason",
                "publishes whose message-path spans were built, by why",
            ),
            &self.traces_sampled,
            &SAMPLED,
        );
    }
}

/// Every `arqonbus.shield.traces_sampled` label.
const SAMPLED: [&str; 4] = ["parent", "ratio", "error", "policy"];

/// Every `arqonbus.policy.verdicts` label, rendered from the first scrape.
const VERDICTS: [&str; 7] = ["allow", "block", "trap", "timeout", "memory", "abi", "load"];
/// Every `arqonbus.spine.errors` label.
const SPINE_OPS: [&str; 2] = ["publish", "subscribe"];

/// Renders a counter over a fixed label set, zeros included, so every series exists from the start.
fn render_fixed(
    out: &mut String,
    (name, label, help): (&str, &str, &str),
    counter: &LabelledCounter,
    values: &[&str],
) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    for value in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {}", counter.get(value));
    }
}

/// The `arqonbus.policy.verdicts` label of a verdict.
pub fn verdict_label(verdict: &PolicyVerdict) -> &'static str {
    match verdict {
        PolicyVerdict::Allow => "allow",
        PolicyVerdict::Block(ErrorCode::PolicyTrap) => "trap",
        PolicyVerdict::Block(ErrorCode::PolicyTimeout) => "timeout",
        PolicyVerdict::Block(ErrorCode::PolicyMemory) => "memory",
        PolicyVerdict::Block(ErrorCode::PolicyAbi) => "abi",
        PolicyVerdict::Block(ErrorCode::PolicyLoad) => "load",
        PolicyVerdict::Block(_) => "block",
    }
}

use arqon_telemetry::trace::span_tracestate;
pub use arqon_telemetry::trace::{TraceParent, continue_trace, span_traceparent};

/// Puts `span`'s trace context and the publish time into spine headers.
pub fn inject(span: &Span, headers: &mut Headers, published_us: u64) {
    if let Some(parent) = span_traceparent(span) {
        let _ = headers.insert(TRACEPARENT, &parent.to_string());
        let state = span_tracestate(span);
        if !state.is_empty() {
            let _ = headers.insert(TRACESTATE, &state);
        }
    }
    let _ = headers.insert(PUBLISHED_US, &published_us.to_string());
    tracing::debug!(headers = headers.len(), "publishing to the spine");
}

/// The `shield.connect` span of one upgrade request.
pub fn connect_span() -> Span {
    let span = tracing::info_span!(
        "shield.connect",
        trace_id = tracing::field::Empty,
        outcome = tracing::field::Empty,
        reason = tracing::field::Empty,
        tenant = tracing::field::Empty,
    );
    continue_trace(&span, None, None);
    span
}

/// Whether the message path's spans are built now (see [`publish_span`]), so a caller can skip
/// preparing a span's fields when no one would take the span. Asked from this module, whose target
/// those spans carry.
pub fn message_spans_on() -> bool {
    tracing::enabled!(kind: tracing::metadata::Kind::SPAN, tracing::Level::DEBUG)
}

/// The `shield.publish` span of one client publish, continuing the client's trace when it sent one.
///
/// The spans of the message path (`shield.publish`, `policy.check`, `spine.publish`,
/// `spine.receive`, `shield.fanout`) are at `debug`: they exist when traces are exported (the
/// OpenTelemetry layer takes `debug` spans then) or when the log level shows `debug` lines of the
/// Shield (whose lines then carry the `trace_id`), and cost nothing per message otherwise.
pub fn publish_span(
    tenant: &str,
    request: &str,
    room: &str,
    bytes: usize,
    client: Option<(&str, &str)>,
) -> Span {
    let span = tracing::debug_span!(
        "shield.publish",
        trace_id = tracing::field::Empty,
        tenant,
        request,
        room,
        bytes,
        sampled = tracing::field::Empty,
        outcome = tracing::field::Empty,
        elapsed_us = tracing::field::Empty,
    );
    continue_trace(&span, client.map(|c| c.0), client.map(|c| c.1));
    span
}

/// A publish the head decision dropped, kept after all for how it ended (`kept` is `Error` or
/// `Policy`): its `shield.publish` span, made now, with the outcome and how long the publish had
/// run (`elapsed_us`), and for a block a `policy.check` child with the verdict. Both end at once.
pub fn late_publish_spans(
    obs: &Observability,
    publish: (&str, &str, &str, usize),
    kept: Kept,
    outcome: &'static str,
    elapsed: Duration,
) {
    obs.traces_sampled.inc(kept.as_str());
    let (tenant, request, room, bytes) = publish;
    let span = publish_span(tenant, request, room, bytes, None);
    span.record("sampled", kept.as_str());
    span.record("outcome", outcome);
    span.record(
        "elapsed_us",
        u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
    );
    if kept == Kept::Policy {
        let check = tracing::debug_span!(parent: &span, "policy.check", verdict = outcome);
        drop(check);
    }
    drop(span);
}

/// The `policy.check` span (child of the current span).
pub fn policy_span() -> Span {
    tracing::debug_span!("policy.check", verdict = tracing::field::Empty)
}

/// The `spine.publish` span (child of the current span).
pub fn spine_publish_span(subject: &str, bytes: usize) -> Span {
    tracing::debug_span!("spine.publish", subject, bytes)
}

/// The `presence.update` span (child of the current span).
pub fn presence_span(op: &'static str, room: &str) -> Span {
    tracing::info_span!("presence.update", op, room)
}

/// A message taken off the spine: its `spine.receive` span (continuing the publisher's trace) and
/// the `shield.fanout` child that [`Delivery::finish`] closes with the member counts.
#[derive(Debug)]
pub struct Delivery {
    receive: Span,
    fanout: Span,
    published_us: Option<u64>,
}

impl Delivery {
    /// Starts the spans for `message` (none when the sampler dropped its publish).
    pub fn start(message: &Message, obs: &Observability) -> Self {
        let published_us = message
            .headers
            .get(PUBLISHED_US)
            .and_then(|v| v.parse().ok());
        if !obs.receive_sampled(message) {
            return Self {
                receive: Span::none(),
                fanout: Span::none(),
                published_us,
            };
        }
        let receive = tracing::debug_span!(
            parent: None,
            "spine.receive",
            trace_id = tracing::field::Empty,
            subject = message.subject.as_str(),
            bytes = message.payload.len(),
        );
        continue_trace(
            &receive,
            message.headers.get(TRACEPARENT),
            message.headers.get(TRACESTATE),
        );
        let fanout = tracing::debug_span!(
            parent: &receive,
            "shield.fanout",
            members = tracing::field::Empty,
            queued = tracing::field::Empty,
        );
        Self {
            receive,
            fanout,
            published_us,
        }
    }

    /// Records how many members there were and how many got the message; when any did, observes the
    /// publish-to-deliver latency at `now_us`.
    pub fn finish(self, obs: &Observability, members: usize, queued: usize, now_us: u64) {
        self.fanout.record("members", members);
        self.fanout.record("queued", queued);
        self.fanout
            .in_scope(|| tracing::debug!(members, queued, "fanned out"));
        if queued > 0
            && let Some(published) = self.published_us
        {
            obs.deliver_latency
                .observe(Duration::from_micros(now_us.saturating_sub(published)));
        }
        drop(self.fanout);
        drop(self.receive);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    // AC-OBS-5
    #[test]
    fn traceparent_round_trips_and_refuses_malformed_values() {
        let parsed = TraceParent::parse(SAMPLE).unwrap();
        assert_eq!(parsed.flags, 1);
        assert_eq!(parsed.trace_id_hex(), "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(parsed.to_string(), SAMPLE);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        // A later version may append fields.
        assert!(TraceParent::parse(&format!("01{}-more", &SAMPLE[2..])).is_some());
    }

    // AC-OBS-1
    #[test]
    fn histogram_renders_cumulative_buckets_sum_and_count() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(300));
        histogram.observe(Duration::from_millis(20));
        histogram.observe(Duration::from_secs(9));
        let mut out = String::new();
        histogram.render(&mut out, "arqonbus_x_seconds", "x");
        assert!(
            out.contains("# TYPE arqonbus_x_seconds histogram\n"),
            "{out}"
        );
        assert!(
            out.contains("arqonbus_x_seconds_bucket{le=\"0.0005\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("arqonbus_x_seconds_bucket{le=\"0.025\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("arqonbus_x_seconds_bucket{le=\"5\"} 2\n"),
            "{out}"
        );
        assert!(
            out.contains("arqonbus_x_seconds_bucket{le=\"+Inf\"} 3\n"),
            "{out}"
        );
        assert!(out.contains("arqonbus_x_seconds_sum 9.0203\n"), "{out}");
        assert!(out.contains("arqonbus_x_seconds_count 3\n"), "{out}");
    }

    // AC-OBS-1
    #[test]
    fn observability_renders_every_catalogue_name() {
        let obs = Observability::default();
        obs.connects.inc(outcome::ACCEPTED, "ok");
        obs.policy_verdicts.inc(verdict_label(&PolicyVerdict::Block(
            ErrorCode::PolicyTimeout,
        )));
        obs.spine_errors.inc("publish");
        obs.presence_joined();
        obs.presence_left();
        obs.presence_left();
        let mut out = String::new();
        obs.render(&mut out);
        for line in [
            "arqonbus_shield_connects{outcome=\"accepted\",reason=\"ok\"} 1",
            "arqonbus_policy_verdicts{verdict=\"timeout\"} 1",
            "arqonbus_spine_errors{op=\"publish\"} 1",
            "arqonbus_spine_errors{op=\"subscribe\"} 0",
            "arqonbus_policy_verdicts{verdict=\"allow\"} 0",
            "arqonbus_presence_members 0",
            "arqonbus_shield_handshake_seconds_count 0",
            "arqonbus_shield_deliver_latency_seconds_count 0",
            "arqonbus_policy_duration_seconds_count 0",
        ] {
            assert!(
                out.contains(&format!("{line}\n")),
                "{line} missing from {out}"
            );
        }
        assert_eq!(obs.connects.get("accepted", "ok"), 1);
    }
}

//! Shield metrics as plain atomics, rendered in the Prometheus text format on `/metrics`.
//!
//! Names follow `arqonbus.shield.<what>`; the text format writes them with `_` for `.`.
//! Labelled counters (auth failures, admission rejections, closes) are keyed by a fixed label
//! (`&'static str`), never by client input, so their cardinality is bounded.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::counters::LabelledCounter;

macro_rules! metrics {
    ($($field:ident: $kind:literal, $help:literal;)*) => {
        /// Every Shield counter and gauge.
        #[derive(Debug, Default)]
        pub struct Metrics {
            $(
                #[doc = $help]
                pub $field: AtomicU64,
            )*
            /// `arqonbus.shield.auth_failures{reason}`: upgrades refused with 401.
            pub auth_failures: LabelledCounter,
            /// `arqonbus.shield.admission_rejections{reason}`: upgrades refused with 503.
            pub admission_rejections: LabelledCounter,
            /// `arqonbus.shield.sessions_closed{reason}`: sessions ended, by reason.
            pub sessions_closed: LabelledCounter,
            /// `arqonbus.shield.errors_sent{code}`: `Error` envelopes sent, by code.
            pub errors_sent: LabelledCounter,
            /// Histograms and the metrics of other components (`telemetry.rs`).
            pub obs: crate::telemetry::Observability,
        }

        impl Metrics {
            /// The Prometheus text exposition of every metric.
            pub fn render(&self) -> String {
                let mut out = String::new();
                $(
                    let name = concat!("arqonbus_shield_", stringify!($field));
                    let _ = writeln!(out, "# HELP {name} {}", $help);
                    let _ = writeln!(out, "# TYPE {name} {}", $kind);
                    let _ = writeln!(out, "{name} {}", self.$field.load(Ordering::Relaxed));
                )*
                for (name, label, help, counter) in [
                    ("auth_failures", "reason", "upgrades refused with 401", &self.auth_failures),
                    ("admission_rejections", "reason", "upgrades refused with 503", &self.admission_rejections),
                    ("sessions_closed", "reason", "sessions ended", &self.sessions_closed),
                    ("errors_sent", "code", "error envelopes sent", &self.errors_sent),
                ] {
                    let _ = writeln!(out, "# HELP arqonbus_shield_{name} {help}");
                    let _ = writeln!(out, "# TYPE arqonbus_shield_{name} counter");
                    for (value, count) in counter.snapshot() {
                        let _ = writeln!(out, "arqonbus_shield_{name}{{{label}=\"{value}\"}} {count}");
                    }
                }
                self.obs.render(&mut out);
                out
            }
        }
    };
}

metrics! {
    connections_open: "gauge", "`arqonbus.shield.connections_open`: WebSocket sessions currently open";
    connections_accepted: "counter", "`arqonbus.shield.connections_accepted`: upgrades completed";
    frames_in: "counter", "`arqonbus.shield.frames_in`: frames read from clients";
    protocol_errors: "counter", "`arqonbus.shield.protocol_errors`: frames refused by the decoder";
    published: "counter", "`arqonbus.shield.published`: envelopes handed to the spine";
    publish_failures: "counter", "`arqonbus.shield.publish_failures`: spine publishes that failed";
    policy_blocked: "counter", "`arqonbus.shield.policy_blocked`: publishes blocked by the policy chain";
    delivered: "counter", "`arqonbus.shield.delivered`: envelopes queued to local sockets";
    batch_frames: "counter", "`arqonbus.shield.batch_frames`: batch frames sent to clients that offered arqon.v1.batch";
    batched_envelopes: "counter", "`arqonbus.shield.batched_envelopes`: envelopes sent inside batch frames";
    dropped_slow: "counter", "`arqonbus.shield.dropped_slow`: envelopes dropped because a socket's queue was full";
    rooms_subscribed: "gauge", "`arqonbus.shield.rooms_subscribed`: spine room subscriptions held by this node";
    refreshes: "counter", "`arqonbus.shield.refreshes`: in-band refresh tokens that verified";
    recoveries: "counter", "`arqonbus.shield.recoveries`: joins that carried a position";
    recoveries_complete: "counter", "`arqonbus.shield.recoveries_complete`: recovering joins answered recovered = true";
    recovered_messages: "counter", "`arqonbus.shield.recovered_messages`: messages sent from history to recovering joins";
    history_reads: "counter", "`arqonbus.shield.history_reads`: history reads (recoveries, history requests, gap repairs)";
    history_read_failures: "counter", "`arqonbus.shield.history_read_failures`: history reads that failed";
    live_gaps_repaired: "counter", "`arqonbus.shield.live_gaps_repaired`: gaps on a live room subscription filled from history";
}

/// Adds one to a counter.
pub(crate) fn inc(counter: &AtomicU64) {
    add(counter, 1);
}

/// Adds `n` to a counter.
pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// Subtracts one from a gauge.
pub(crate) fn dec(gauge: &AtomicU64) {
    gauge.fetch_sub(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-SHIELD-16
    #[test]
    fn renders_prometheus_text_with_labels() {
        let metrics = Metrics::default();
        inc(&metrics.published);
        metrics.auth_failures.inc("expired");
        metrics.auth_failures.inc("expired");
        let text = metrics.render();
        assert!(text.contains("arqonbus_shield_published 1\n"), "{text}");
        assert!(
            text.contains("arqonbus_shield_auth_failures{reason=\"expired\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE arqonbus_shield_connections_open gauge"),
            "{text}"
        );
        assert_eq!(metrics.auth_failures.total(), 2);
    }
}

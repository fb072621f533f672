//! Policy counters as plain atomics: verdicts by verdict and reason, and evaluation latency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::verdict::{PolicyCode, Verdict};

/// Counter of evaluations, labelled `verdict` (`allow`/`block`) and `reason`.
pub const VERDICTS_METRIC: &str = "arqonbus.policy.verdicts";
/// Histogram of whole-evaluation latency (global plus tenant chain), in microseconds.
pub const LATENCY_METRIC: &str = "arqonbus.policy.eval_latency_us";

/// Upper bounds of the latency buckets, in microseconds; a last bucket counts everything above.
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 50_000,
];

/// The live counters.
#[derive(Debug, Default)]
pub struct PolicyMetrics {
    allowed: AtomicU64,
    blocked: [AtomicU64; PolicyCode::ALL.len()],
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    latency_sum_ns: AtomicU64,
}

/// One counter value of [`VERDICTS_METRIC`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerdictCount {
    /// `allow` or `block`.
    pub verdict: &'static str,
    /// `none` for allow, else the block's reason label (`blocked`, `trap`, …).
    pub reason: &'static str,
    /// How many evaluations ended so.
    pub count: u64,
}

/// A copy of the counters at one moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Verdict counts, allow first, then one per [`PolicyCode`] in its fixed order.
    pub verdicts: Vec<VerdictCount>,
    /// Evaluation counts per latency bucket (bounds in [`LATENCY_BOUNDS_US`], then the overflow).
    pub latency_buckets: Vec<u64>,
    /// Sum of all evaluation latencies, in nanoseconds.
    pub latency_sum_ns: u64,
}

impl MetricsSnapshot {
    /// The count of one `(verdict, reason)` pair.
    pub fn count(&self, verdict: &str, reason: &str) -> u64 {
        self.verdicts
            .iter()
            .find(|c| c.verdict == verdict && c.reason == reason)
            .map_or(0, |c| c.count)
    }

    /// Evaluations counted by the latency histogram.
    pub fn evaluations(&self) -> u64 {
        self.latency_buckets.iter().sum()
    }
}

impl PolicyMetrics {
    /// Counts one evaluation.
    pub fn record(&self, verdict: &Verdict, latency: Duration) {
        let counter = match verdict.code() {
            None => &self.allowed,
            Some(code) => &self.blocked[code_index(code)],
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_US
            .iter()
            .position(|bound| micros < *bound)
            .unwrap_or(LATENCY_BOUNDS_US.len());
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.latency_sum_ns.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let allowed = VerdictCount {
            verdict: "allow",
            reason: "none",
            count: load(&self.allowed),
        };
        let blocked = PolicyCode::ALL.iter().map(|code| VerdictCount {
            verdict: "block",
            reason: code.reason(),
            count: load(&self.blocked[code_index(*code)]),
        });
        MetricsSnapshot {
            verdicts: std::iter::once(allowed).chain(blocked).collect(),
            latency_buckets: self.buckets.iter().map(load).collect(),
            latency_sum_ns: load(&self.latency_sum_ns),
        }
    }
}

fn code_index(code: PolicyCode) -> usize {
    PolicyCode::ALL
        .iter()
        .position(|c| *c == code)
        .unwrap_or_default()
}

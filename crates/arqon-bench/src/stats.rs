//! Latency samples and their percentiles, reported in microseconds.

use std::time::Duration;

/// A set of latency samples.
#[derive(Debug, Default, Clone)]
pub(crate) struct Samples {
    micros: Vec<u64>,
}

/// Percentiles of a sample set, in microseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) struct Summary {
    pub(crate) count: usize,
    pub(crate) p50_us: u64,
    pub(crate) p99_us: u64,
    pub(crate) p999_us: u64,
    pub(crate) max_us: u64,
}

impl Samples {
    pub(crate) fn push(&mut self, latency: Duration) {
        self.micros
            .push(u64::try_from(latency.as_micros()).unwrap_or(u64::MAX));
    }

    pub(crate) fn extend(&mut self, other: Samples) {
        self.micros.extend(other.micros);
    }

    pub(crate) fn summary(&self) -> Summary {
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        Summary {
            count: sorted.len(),
            p50_us: percentile(&sorted, 500),
            p99_us: percentile(&sorted, 990),
            p999_us: percentile(&sorted, 999),
            max_us: sorted.last().copied().unwrap_or(0),
        }
    }
}

/// Nearest-rank percentile of sorted samples, in per-mille (990 = p99), in integers; 0 for none.
fn percentile(sorted: &[u64], permille: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (permille * sorted.len()).div_ceil(1000);
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of `values` (the upper one of an even count); 0 for none.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// One latency line: `name`, the workload, p50/p99/p999 and the sample count with `note`.
pub(crate) fn print_latency(name: &str, workload: &str, summary: &Summary, note: &str) {
    println!(
        "{name:9} {workload:11} p50 {:>7} µs  p99 {:>7} µs  p999 {:>7} µs  ({} {note})",
        summary.p50_us, summary.p99_us, summary.p999_us, summary.count
    );
}

/// Reports a workload that failed, on stdout and as `<scenario>_error` in `result`.
pub(crate) fn failed(
    name: &str,
    scenario: &str,
    error: &anyhow::Error,
    result: &mut serde_json::Map<String, serde_json::Value>,
) {
    println!("{name:9} {scenario:11} FAILED: {error:#}");
    result.insert(
        format!("{scenario}_error"),
        serde_json::json!(format!("{error:#}")),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut s = Samples::default();
        for us in 1..=1000 {
            s.push(Duration::from_micros(us));
        }
        let sum = s.summary();
        assert_eq!(
            (sum.count, sum.p50_us, sum.p99_us, sum.p999_us, sum.max_us),
            (1000, 500, 990, 999, 1000)
        );
        assert_eq!(Samples::default().summary().p99_us, 0);
    }

    #[test]
    fn the_median_is_the_middle_value_of_the_sorted_rounds() {
        assert!((median(&[3.0, 1.0, 2.0]) - 2.0).abs() < f64::EPSILON);
        assert!((median(&[0.9, 1.2]) - 1.2).abs() < f64::EPSILON);
        assert!(median(&[]).abs() < f64::EPSILON);
    }
}

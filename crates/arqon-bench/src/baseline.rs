//! Joins a run's ratios with the checked-in baseline of ratios (`ci/perf-baseline.json`) into the
//! `benches` list the ACES perf policy judges. Only ratios are compared, never absolute times.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Which way a ratio improves.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// One ratio of the baseline file.
#[derive(Debug, Deserialize)]
struct Entry {
    /// ArqonBus / nats-server, as measured when the baseline was taken.
    ratio: f64,
    better: Better,
    /// How far (relative) the ratio may move the wrong way before the perf stage denies.
    tolerance: f64,
}

/// `ci/perf-baseline.json`.
#[derive(Debug, Deserialize)]
struct File {
    ratios: BTreeMap<String, Entry>,
}

/// One line of the perf facts: this run's ratio beside its baseline.
#[derive(Debug, Serialize, PartialEq)]
pub(crate) struct Bench {
    pub(crate) name: String,
    /// `None` when the workload failed on either side in this run.
    pub(crate) ratio: Option<f64>,
    pub(crate) baseline: f64,
    pub(crate) better: Better,
    pub(crate) tolerance: f64,
}

/// Every ratio the baseline names, with this run's value (missing ratios stay `None`, so the policy
/// sees a workload that did not report).
pub(crate) fn join(path: &Path, ratios: &serde_json::Value) -> anyhow::Result<Vec<Bench>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let file: File =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    Ok(file
        .ratios
        .into_iter()
        .map(|(name, entry)| Bench {
            ratio: ratios.get(&name).and_then(serde_json::Value::as_f64),
            name,
            baseline: entry.ratio,
            better: entry.better,
            tolerance: entry.tolerance,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_baseline_ratio_is_listed_with_this_runs_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.json");
        std::fs::write(
            &path,
            r#"{"ratios": {"throughput": {"ratio": 0.65, "better": "higher", "tolerance": 0.2},
                           "pubsub_p50": {"ratio": 1.3, "better": "lower", "tolerance": 0.3}}}"#,
        )
        .unwrap();
        let benches = join(
            &path,
            &serde_json::json!({"throughput": 0.7, "pubsub_p50": null}),
        )
        .unwrap();
        assert_eq!(
            benches,
            vec![
                Bench {
                    name: "pubsub_p50".to_owned(),
                    ratio: None,
                    baseline: 1.3,
                    better: Better::Lower,
                    tolerance: 0.3
                },
                Bench {
                    name: "throughput".to_owned(),
                    ratio: Some(0.7),
                    baseline: 0.65,
                    better: Better::Higher,
                    tolerance: 0.2
                },
            ]
        );
    }
}

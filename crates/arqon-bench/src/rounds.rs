//! Workloads run in rounds that alternate the systems (ArqonBus, nats-server, ArqonBus, …), folded
//! into each system's medians and the median of the rounds' ratios: the machine's drift during a
//! run then moves both systems alike instead of deciding the ratio.

use futures_util::future::BoxFuture;
use serde_json::{Value, json};

use crate::client::Target;
use crate::procs::Proc;

/// The figures one workload reported for one system in one round (as `measure` records them).
pub(crate) type Figures = serde_json::Map<String, Value>;

/// Each system's figures, round by round.
pub(crate) struct Rounds {
    /// Per system, in the order of the `active` list: its name and its rounds' figures.
    systems: Vec<(&'static str, Vec<Figures>)>,
}

impl Rounds {
    /// Runs `workload` `count` times against every system, alternating them, and keeps what each
    /// round reported. `label` names the workload in the progress lines.
    pub(crate) async fn run<'a>(
        active: &[(&'a Target, &'a Proc)],
        count: usize,
        label: &str,
        mut workload: impl FnMut(&'a Target, &'a Proc) -> BoxFuture<'a, Figures>,
    ) -> Self {
        let mut systems: Vec<(&'static str, Vec<Figures>)> = active
            .iter()
            .map(|(target, _)| (target.name(), Vec::new()))
            .collect();
        for round in 0..count {
            if count > 1 {
                println!("{label} round {} of {count}", round + 1);
            }
            for ((target, proc), (_, figures)) in active.iter().zip(&mut systems) {
                figures.push(workload(target, proc).await);
            }
        }
        Self { systems }
    }

    /// Writes each system's figures into `results[<system>]`: every number (at the top or one
    /// level down, as a latency summary's percentiles) as the median of its rounds, anything else
    /// (an error) as the last round reported it.
    pub(crate) fn fold_into(&self, results: &mut Figures) {
        for (name, figures) in &self.systems {
            let result = results.entry(*name).or_insert_with(|| json!({}));
            if let Some(result) = result.as_object_mut() {
                result.extend(medians(figures));
            }
        }
    }

    /// Folds the rounds into `results` ([`Rounds::fold_into`]) and, for each `(name, path)` both
    /// systems reported, prints the ratio and records the median round's as `ratios[name]` and
    /// every round's as `ratios[<name>_round_ratios]`.
    pub(crate) fn record(
        &self,
        results: &mut Figures,
        ratios: &mut Figures,
        named: &[(&str, &[&str])],
    ) {
        self.fold_into(results);
        for (name, path) in named {
            if let Some(ratio) = self.ratio(path) {
                print_ratio(&format!("{name} ratio"), &ratio);
                ratios.insert((*name).to_owned(), json!(ratio.0));
                ratios.insert(format!("{name}_round_ratios"), json!(ratio.1));
            }
        }
    }

    /// The figure at `path` for every round of `system`.
    pub(crate) fn values(&self, system: &str, path: &[&str]) -> Vec<f64> {
        self.systems
            .iter()
            .filter(|(name, _)| *name == system)
            .flat_map(|(_, figures)| figures.iter())
            .filter_map(|figures| at(figures, path)?.as_f64())
            .collect()
    }

    /// ArqonBus / nats-server of the figure at `path`, round by round, when both systems reported
    /// it in every round; with their median.
    pub(crate) fn ratio(&self, path: &[&str]) -> Option<(f64, Vec<f64>)> {
        let arqon = self.values("arqonbus", path);
        let nats = self.values("nats-ws", path);
        if arqon.is_empty() || arqon.len() != nats.len() {
            return None;
        }
        let paired: Vec<f64> = arqon
            .iter()
            .zip(&nats)
            .map(|(a, n)| a / n.max(f64::MIN_POSITIVE))
            .collect();
        Some((crate::stats::median(&paired), paired))
    }
}

/// One line: the median round's ratio and every round's.
pub(crate) fn print_ratio(what: &str, (ratio, rounds): &(f64, Vec<f64>)) {
    let rounds: Vec<String> = rounds.iter().map(|r| format!("{r:.3}")).collect();
    println!(
        "{what}: median round {ratio:.3}× (rounds {})",
        rounds.join(", ")
    );
}

/// Every numeric figure of a system's rounds (top level, or inside an object such as a latency
/// summary) as the median of its rounds; other values as the last round reported them.
fn medians(figures: &[Figures]) -> Figures {
    let mut merged = Figures::new();
    for figure in figures {
        for (name, value) in figure {
            let folded = match value {
                Value::Number(_) => median_of(figures, &[name.as_str()]),
                Value::Object(inner) => {
                    let mut object = inner.clone();
                    for (field, field_value) in inner {
                        if field_value.is_number() {
                            object.insert(
                                field.clone(),
                                median_of(figures, &[name.as_str(), field.as_str()]),
                            );
                        }
                    }
                    Value::Object(object)
                }
                other => other.clone(),
            };
            merged.insert(name.clone(), folded);
        }
    }
    merged
}

/// The value at `path` in one round's figures (a name, or a name and a field of its object).
fn at<'a>(figures: &'a Figures, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(figures.get(*first)?, |value, key| value.get(*key))
}

/// The median over `figures` of the number at `path`, as that round reported it (a count stays an
/// integer): the upper middle round's, as [`crate::stats::median`] takes it.
fn median_of(figures: &[Figures], path: &[&str]) -> Value {
    let mut values: Vec<(f64, &Value)> = figures
        .iter()
        .filter_map(|figure| {
            let value = at(figure, path)?;
            Some((value.as_f64()?, value))
        })
        .collect();
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    values
        .get(values.len() / 2)
        .map_or(json!(0.0), |(_, value)| (*value).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(rate: f64, p50: u64) -> Figures {
        let value = json!({"rate": rate, "pubsub": {"p50_us": p50, "count": 10}, "note": "x"});
        value.as_object().cloned().unwrap()
    }

    #[test]
    fn rounds_fold_into_medians_and_a_median_paired_ratio() {
        let rounds = Rounds {
            systems: vec![
                (
                    "arqonbus",
                    vec![figures(9.0, 300), figures(12.0, 100), figures(6.0, 200)],
                ),
                (
                    "nats-ws",
                    vec![figures(10.0, 100), figures(10.0, 100), figures(3.0, 100)],
                ),
            ],
        };
        let mut results = Figures::new();
        rounds.fold_into(&mut results);
        assert_eq!(results["arqonbus"]["rate"], json!(9.0));
        // The middle round's value as reported: integers stay integers.
        assert_eq!(results["arqonbus"]["pubsub"]["p50_us"], json!(200));
        assert_eq!(results["arqonbus"]["pubsub"]["count"].as_u64(), Some(10));
        assert_eq!(results["arqonbus"]["note"], json!("x"));
        assert_eq!(results["nats-ws"]["rate"], json!(10.0));
        // Rounds' ratios 0.9, 1.2 and 2.0: the median round's is 1.2, not 9 / 10.
        let (ratio, paired) = rounds.ratio(&["rate"]).unwrap();
        assert_eq!(paired, vec![0.9, 1.2, 2.0]);
        assert!((ratio - 1.2).abs() < 1e-12);
        assert!((rounds.ratio(&["pubsub", "p50_us"]).unwrap().0 - 2.0).abs() < 1e-12);
        assert!(rounds.ratio(&["missing"]).is_none());
    }
}

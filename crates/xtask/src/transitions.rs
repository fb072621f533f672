//! `cargo xtask transitions`: the transition coverage of every `arqon-core` machine, for ACES.
//!
//! Prints one line per machine and, last, one JSON line `{"covered", "total", "machines"}` that the
//! ACES schema stage reads; exits non-zero when a row never fired or an invariant broke.

use std::fmt::Write as _;

use arqon_model::coverage::{Summary, every_machine};
use serde_json::json;

/// One line per machine: `session: 41/41 transitions, 5120 states`.
fn line(summary: &Summary) -> String {
    let mut text = format!(
        "{}: {}/{} transitions, {} states",
        summary.machine, summary.fired, summary.total, summary.states
    );
    for row in &summary.missing {
        let _ = write!(text, "\n  never fired: {row}");
    }
    if let Some(violation) = &summary.violation {
        let _ = write!(text, "\n  invariant violated: {violation}");
    }
    text
}

/// The figures ACES reads: totals over every machine, and each machine's counts.
fn figures(summaries: &[Summary]) -> serde_json::Value {
    let machines: serde_json::Map<String, serde_json::Value> = summaries
        .iter()
        .map(|s| {
            (
                s.machine.to_owned(),
                json!({"covered": s.fired, "total": s.total, "states": s.states}),
            )
        })
        .collect();
    json!({
        "covered": summaries.iter().map(|s| s.fired).sum::<usize>(),
        "total": summaries.iter().map(|s| s.total).sum::<usize>(),
        "violations": summaries.iter().filter(|s| s.violation.is_some()).count(),
        "machines": machines,
    })
}

/// Explores every machine; `Ok(false)` when a row never fired or an invariant broke.
pub(crate) fn run() -> bool {
    let summaries = every_machine();
    for summary in &summaries {
        println!("{}", line(summary));
    }
    println!("{}", figures(&summaries));
    summaries
        .iter()
        .all(|s| s.missing.is_empty() && s.violation.is_none() && s.fired == s.total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(fired: usize, missing: &[&str]) -> Summary {
        Summary {
            machine: "m",
            fired,
            total: 3,
            states: 7,
            missing: missing.iter().map(|m| (*m).to_owned()).collect(),
            violation: None,
        }
    }

    #[test]
    fn figures_sum_every_machine_and_lines_name_the_missing_rows() {
        let summaries = [summary(3, &[]), summary(2, &["a --x--> b [g]"])];
        let f = figures(&summaries);
        assert_eq!(f["covered"], 5);
        assert_eq!(f["total"], 6);
        assert_eq!(f["machines"]["m"]["covered"], 2);
        assert_eq!(
            line(&summaries[1]),
            "m: 2/3 transitions, 7 states\n  never fired: a --x--> b [g]"
        );
    }
}

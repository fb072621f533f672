//! The verdicts as a terminal table and as `target/aces/report.md` for auditors.

use std::fmt::Write as _;
use std::time::Duration;

use super::policy::Verdict;

fn status(verdict: &Verdict) -> &'static str {
    if !verdict.deny.is_empty() {
        "FAIL"
    } else if !verdict.warn.is_empty() {
        "warn"
    } else {
        "pass"
    }
}

/// `stage | verdict | reasons`, one line per reason.
pub(crate) fn table(verdicts: &[Verdict]) -> String {
    let mut out = format!("{:<14} {:<5} reasons\n", "stage", "");
    for verdict in verdicts {
        let reasons: Vec<String> = verdict
            .deny
            .iter()
            .map(|d| format!("deny: {d}"))
            .chain(verdict.warn.iter().map(|w| format!("warn: {w}")))
            .collect();
        let first = reasons.first().map_or("", String::as_str);
        let _ = writeln!(out, "{:<14} {:<5} {first}", verdict.stage, status(verdict));
        for reason in reasons.iter().skip(1) {
            let _ = writeln!(out, "{:<14} {:<5} {reason}", "", "");
        }
    }
    let denied = verdicts.iter().filter(|v| !v.deny.is_empty()).count();
    let _ = writeln!(out, "{} stages, {denied} failed", verdicts.len());
    out
}

/// The auditor's report: the tier, the verdict table, then every deny and warn per stage.
pub(crate) fn markdown(verdicts: &[Verdict], full: bool, elapsed: Duration) -> String {
    let tier = if full { "full" } else { "fast" };
    let mut out = String::from("# ACES report\n\n");
    let _ = writeln!(
        out,
        "Tier: **{tier}**. Took {:.1} s. Policies: `policy/<stage>.rego`; spec: `specs/aces.md`.\n",
        elapsed.as_secs_f64()
    );
    out.push_str(
        "| stage | verdict | denies | warnings | facts |\n| --- | --- | --- | --- | --- |\n",
    );
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | `{}` |",
            v.stage,
            status(v),
            v.deny.len(),
            v.warn.len(),
            v.facts
        );
    }
    for v in verdicts {
        let _ = writeln!(out, "\n## {} ({})\n", v.stage, status(v));
        if v.deny.is_empty() && v.warn.is_empty() {
            out.push_str("Every check ran and passed.\n");
        }
        for d in &v.deny {
            let _ = writeln!(out, "- **deny**: {}", escape(d));
        }
        for w in &v.warn {
            let _ = writeln!(out, "- warn: {}", escape(w));
        }
    }
    out
}

/// Keeps messages on one Markdown line.
fn escape(message: &str) -> String {
    message.replace('\n', " ⏎ ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(stage: &str, deny: &[&str], warn: &[&str]) -> Verdict {
        Verdict {
            stage: stage.to_owned(),
            deny: deny.iter().map(|s| (*s).to_owned()).collect(),
            warn: warn.iter().map(|s| (*s).to_owned()).collect(),
            facts: format!("target/aces/{stage}.json"),
        }
    }

    // AC-ACES-11
    #[test]
    fn table_and_report_show_every_reason_and_the_status() {
        let verdicts = [
            verdict("spec", &["spec: a", "spec: b"], &["spec: c"]),
            verdict("perf", &[], &[]),
        ];
        let table = table(&verdicts);
        assert!(
            table.contains("spec           FAIL  deny: spec: a\n"),
            "{table}"
        );
        assert!(table.contains("warn: spec: c"));
        assert!(table.contains("perf           pass"));
        assert!(table.ends_with("2 stages, 1 failed\n"));
        let report = markdown(&verdicts, true, Duration::from_millis(1500));
        assert!(report.contains("Tier: **full**. Took 1.5 s."));
        assert!(report.contains("| spec | FAIL | 2 | 1 | `target/aces/spec.json` |"));
        assert!(report.contains("- **deny**: spec: b"));
        assert!(report.contains("## perf (pass)\n\nEvery check ran and passed."));
    }
}

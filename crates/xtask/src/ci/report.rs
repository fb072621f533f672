//! The verdicts as a terminal table and as `target/aces/report.md` for auditors. A stage passes only
//! when every one of its checks was judged; a check that did not run is "not judged in this tier",
//! never a pass.

use std::fmt::Write as _;
use std::time::Duration;

use super::policy::Verdict;

fn status(verdict: &Verdict) -> &'static str {
    if !verdict.deny.is_empty() {
        "FAIL"
    } else if verdict.not_judged.is_empty() {
        "pass"
    } else if verdict.judged.is_empty() {
        "not judged"
    } else {
        "partly judged"
    }
}

/// `judged/all` checks of a stage.
fn judged(verdict: &Verdict) -> String {
    format!(
        "{}/{}",
        verdict.judged.len(),
        verdict.judged.len() + verdict.not_judged.len()
    )
}

/// Every reason of a stage, denies first: `deny: …`, `not judged in this tier: …`, `warn: …`.
fn reasons(verdict: &Verdict) -> Vec<String> {
    let denies = verdict.deny.iter().map(|d| format!("deny: {d}"));
    let skipped = verdict
        .not_judged
        .iter()
        .map(|(name, reason)| format!("not judged in this tier: `{name}`: {reason}"));
    let warns = verdict.warn.iter().map(|w| format!("warn: {w}"));
    denies.chain(skipped).chain(warns).collect()
}

/// The totals line: stages by status, then checks judged and not judged.
fn totals(verdicts: &[Verdict]) -> String {
    let count = |wanted: &str| verdicts.iter().filter(|v| status(v) == wanted).count();
    let judged: usize = verdicts.iter().map(|v| v.judged.len()).sum();
    let not_judged: usize = verdicts.iter().map(|v| v.not_judged.len()).sum();
    format!(
        "{} stages: {} pass, {} FAIL, {} partly judged, {} not judged in this tier; checks: {judged} judged, {not_judged} not judged",
        verdicts.len(),
        count("pass"),
        count("FAIL"),
        count("partly judged"),
        count("not judged"),
    )
}

/// `stage | verdict | judged | reasons`, one line per reason, then the stages not judged and the totals.
pub(crate) fn table(verdicts: &[Verdict]) -> String {
    let mut out = format!(
        "{:<14} {:<13} {:<6} reasons\n",
        "stage", "verdict", "judged"
    );
    for verdict in verdicts {
        let reasons = reasons(verdict);
        let first = reasons.first().map_or("", String::as_str);
        let _ = writeln!(
            out,
            "{:<14} {:<13} {:<6} {first}",
            verdict.stage,
            status(verdict),
            judged(verdict)
        );
        for reason in reasons.iter().skip(1) {
            let _ = writeln!(out, "{:<14} {:<13} {:<6} {reason}", "", "", "");
        }
    }
    for verdict in verdicts.iter().filter(|v| status(v) == "not judged") {
        let _ = writeln!(out, "{}: not judged in this tier", verdict.stage);
    }
    let _ = writeln!(out, "{}", totals(verdicts));
    out
}

/// The auditor's report: the tier, the verdict table, then every reason per stage.
pub(crate) fn markdown(verdicts: &[Verdict], full: bool, elapsed: Duration) -> String {
    let tier = if full { "full" } else { "fast" };
    let mut out = String::from("# ACES report\n\n");
    let _ = writeln!(
        out,
        "Tier: **{tier}**. Took {:.1} s. Policies: `policy/<stage>.rego`; spec: `specs/aces.md`.\n",
        elapsed.as_secs_f64()
    );
    let _ = writeln!(out, "{}.\n", totals(verdicts));
    out.push_str(
        "| stage | verdict | judged | denies | warnings | facts |\n| --- | --- | --- | --- | --- | --- |\n",
    );
    for v in verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | `{}` |",
            v.stage,
            status(v),
            judged(v),
            v.deny.len(),
            v.warn.len(),
            v.facts
        );
    }
    for v in verdicts {
        let _ = writeln!(out, "\n## {} ({})\n", v.stage, status(v));
        let reasons = reasons(v);
        if reasons.is_empty() {
            out.push_str("Every check ran and passed.\n");
        }
        for reason in reasons {
            let (kind, text) = reason.split_once(": ").unwrap_or(("", &reason));
            let kind = if kind == "deny" { "**deny**" } else { kind };
            let _ = writeln!(out, "- {kind}: {}", escape(text));
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

    fn verdict(stage: &str, deny: &[&str], judged: &[&str], not_judged: &[&str]) -> Verdict {
        let owned = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        Verdict {
            stage: stage.to_owned(),
            deny: owned(deny),
            warn: Vec::new(),
            judged: owned(judged),
            not_judged: not_judged
                .iter()
                .map(|s| ((*s).to_owned(), "runs in --full".to_owned()))
                .collect(),
            facts: format!("target/aces/{stage}.json"),
        }
    }

    // AC-ACES-11
    #[test]
    fn table_and_report_show_every_reason_and_the_status() {
        let mut spec = verdict("spec", &["spec: a", "spec: b"], &["lint"], &[]);
        spec.warn.push("spec: c".to_owned());
        let verdicts = [spec, verdict("static", &[], &["fmt"], &[])];
        let table = table(&verdicts);
        assert!(
            table.contains("spec           FAIL          1/1    deny: spec: a\n"),
            "{table}"
        );
        assert!(table.contains("warn: spec: c"));
        assert!(
            table.contains("static         pass          1/1"),
            "{table}"
        );
        assert!(
            table.ends_with(
                "2 stages: 1 pass, 1 FAIL, 0 partly judged, 0 not judged in this tier; checks: 2 judged, 0 not judged\n"
            ),
            "{table}"
        );
        let report = markdown(&verdicts, true, Duration::from_millis(1500));
        assert!(report.contains("Tier: **full**. Took 1.5 s."));
        assert!(report.contains("| spec | FAIL | 1/1 | 2 | 1 | `target/aces/spec.json` |"));
        assert!(report.contains("- **deny**: spec: b"));
        assert!(report.contains("## static (pass)\n\nEvery check ran and passed."));
    }

    // AC-ACES-16: a planted skip is never called a pass, in the table, the totals or the report.
    #[test]
    fn a_skipped_check_is_not_judged_and_never_a_pass() {
        let verdicts = [
            verdict("perf", &[], &[], &["bench"]),
            verdict("unit", &[], &["nextest"], &["coverage"]),
        ];
        let table = table(&verdicts);
        assert!(
            table.contains(
                "perf           not judged    0/1    not judged in this tier: `bench`: runs in --full\n"
            ),
            "{table}"
        );
        assert!(
            table.contains("unit           partly judged 1/2"),
            "{table}"
        );
        assert!(
            table.contains("\nperf: not judged in this tier\n"),
            "{table}"
        );
        assert!(!table.contains(" pass "), "{table}");
        assert!(
            table.ends_with(
                "2 stages: 0 pass, 0 FAIL, 1 partly judged, 1 not judged in this tier; checks: 1 judged, 2 not judged\n"
            ),
            "{table}"
        );
        let report = markdown(&verdicts, false, Duration::from_millis(10));
        assert!(report.contains(
            "## perf (not judged)\n\n- not judged in this tier: `bench`: runs in --full"
        ));
        assert!(!report.contains("Every check ran and passed."));
    }
}

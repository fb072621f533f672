//! Judging facts with the Rego policies in `policy/` (Conftest conventions) through regorus, and
//! running the policies' own `test_*` rules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context as _, Result, bail};
use regorus::{Engine, Value};

/// Rules every stage policy shares; loaded with each `<stage>.rego`.
const COMMON: &str = "common.rego";

/// The policies' verdict on one stage.
pub(crate) struct Verdict {
    pub(crate) stage: String,
    pub(crate) deny: Vec<String>,
    pub(crate) warn: Vec<String>,
    /// Checks the policies judged: they ran (or could not run at all, which denies).
    pub(crate) judged: Vec<String>,
    /// Checks that did not run in this tier (the policies' `not_run`), with the reason.
    pub(crate) not_judged: Vec<(String, String)>,
    pub(crate) facts: String,
}

/// What the policies of one stage say about its facts.
#[derive(Debug, Default)]
pub(crate) struct Evaluation {
    pub(crate) deny: Vec<String>,
    pub(crate) warn: Vec<String>,
    pub(crate) not_run: BTreeMap<String, String>,
}

/// One `test_*` rule and whether it held.
pub(crate) struct TestOutcome {
    pub(crate) file: String,
    pub(crate) rule: String,
    pub(crate) passed: bool,
}

/// Judges one stage's facts. A missing or broken policy fails the stage (fail closed).
pub(crate) fn judge(policy_dir: &Path, stage: &str, facts_json: &str) -> Verdict {
    let stage_file = policy_dir.join(format!("{stage}.rego"));
    let sources = [policy_dir.join(COMMON), stage_file];
    let evaluated = read_sources(&sources).and_then(|sources| evaluate(&sources, facts_json));
    verdict(stage, evaluated, facts_json)
}

/// The verdict from an evaluation, or from the error that stopped it (fail closed).
fn verdict(stage: &str, evaluated: Result<Evaluation>, facts_json: &str) -> Verdict {
    let evaluation = evaluated.unwrap_or_else(|e| Evaluation {
        deny: vec![format!(
            "{stage}: policy could not be evaluated (fail closed): {e:#}"
        )],
        ..Evaluation::default()
    });
    let judged = checks_in(facts_json)
        .into_iter()
        .filter(|name| !evaluation.not_run.contains_key(name))
        .collect();
    Verdict {
        stage: stage.to_owned(),
        deny: evaluation.deny,
        warn: evaluation.warn,
        judged,
        not_judged: evaluation.not_run.into_iter().collect(),
        facts: format!("target/aces/{stage}.json"),
    }
}

/// The names of the checks in a stage's facts (`{"checks": {name: …}}`).
fn checks_in(facts_json: &str) -> Vec<String> {
    serde_json::from_str::<serde_json::Value>(facts_json)
        .ok()
        .and_then(|facts| {
            facts
                .get("checks")
                .and_then(serde_json::Value::as_object)
                .map(|checks| checks.keys().cloned().collect())
        })
        .unwrap_or_default()
}

fn read_sources(paths: &[std::path::PathBuf]) -> Result<Vec<(String, String)>> {
    paths
        .iter()
        .map(|p| {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            Ok((p.display().to_string(), text))
        })
        .collect()
}

/// Evaluates `data.main.deny`, `data.main.warn` and `data.main.not_run` of the given policy sources
/// against `input`.
pub(crate) fn evaluate(sources: &[(String, String)], input_json: &str) -> Result<Evaluation> {
    let mut engine = engine_with(sources)?;
    engine
        .set_input_json(input_json)
        .context("facts are not valid JSON")?;
    let deny = messages(engine.eval_rule("data.main.deny".to_owned())?)?;
    let warn = messages(engine.eval_rule("data.main.warn".to_owned())?)?;
    let not_run = reasons(engine.eval_rule("data.main.not_run".to_owned())?)?;
    Ok(Evaluation {
        deny,
        warn,
        not_run,
    })
}

fn engine_with(sources: &[(String, String)]) -> Result<Engine> {
    let mut engine = Engine::new();
    for (name, text) in sources {
        engine
            .add_policy(name.clone(), text.clone())
            .with_context(|| format!("parsing {name}"))?;
    }
    Ok(engine)
}

/// A `deny`/`warn` rule's value: a set of strings, or undefined when no rule body held.
fn messages(value: Value) -> Result<Vec<String>> {
    match value {
        Value::Undefined => Ok(Vec::new()),
        Value::Set(set) => set
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(s.to_string()),
                other => bail!("a message is not a string: {other}"),
            })
            .collect(),
        other => bail!("expected a set of messages, got {other}"),
    }
}

/// A `not_run` rule's value: an object from check name to reason, or undefined when every check ran.
fn reasons(value: Value) -> Result<BTreeMap<String, String>> {
    match value {
        Value::Undefined => Ok(BTreeMap::new()),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| match (k, v) {
                (Value::String(name), Value::String(reason)) => {
                    Ok((name.to_string(), reason.to_string()))
                }
                other => bail!("a not_run entry is not a name and a reason: {other:?}"),
            })
            .collect(),
        other => bail!("expected an object of reasons, got {other}"),
    }
}

/// Runs every `test_*` rule of every `*_test.rego` in `dir`, each with `common.rego` and the policy it
/// tests. A stage policy without a test file is reported as a failed test.
pub(crate) fn verify_dir(dir: &Path) -> Result<Vec<TestOutcome>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if let Some(stem) = name.strip_suffix(".rego") {
            names.insert(stem.to_owned());
        }
    }
    let mut outcomes = Vec::new();
    for name in names.iter().filter(|n| !n.ends_with("_test")) {
        let test = format!("{name}_test");
        if !names.contains(&test) {
            outcomes.push(TestOutcome {
                file: format!("{name}.rego"),
                rule: "has a _test.rego".to_owned(),
                passed: false,
            });
            continue;
        }
        let mut paths = vec![dir.join(COMMON)];
        if name != "common" {
            paths.push(dir.join(format!("{name}.rego")));
        }
        paths.push(dir.join(format!("{test}.rego")));
        let sources = read_sources(&paths)?;
        outcomes.extend(run_tests(&sources)?);
    }
    Ok(outcomes)
}

/// Evaluates each `test_*` rule of the last source (the test file) with all sources loaded.
pub(crate) fn run_tests(sources: &[(String, String)]) -> Result<Vec<TestOutcome>> {
    let Some((file, text)) = sources.last() else {
        return Ok(Vec::new());
    };
    let mut engine = engine_with(sources)?;
    let rules: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("test_"))
        .filter_map(|l| {
            l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        })
        .collect();
    let file = Path::new(file)
        .file_name()
        .map_or_else(|| file.clone(), |n| n.to_string_lossy().into_owned());
    let mut outcomes = Vec::new();
    for rule in rules {
        let value = engine.eval_rule(format!("data.main.{rule}"));
        let passed = matches!(value, Ok(Value::Bool(true)));
        outcomes.push(TestOutcome {
            file: file.clone(),
            rule: rule.to_owned(),
            passed,
        });
    }
    Ok(outcomes)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The policies, compiled in so that these unit tests read no files.
    const POLICIES: [(&str, &str, &str); 13] = [
        (
            "common",
            include_str!("../../../../policy/common.rego"),
            include_str!("../../../../policy/common_test.rego"),
        ),
        (
            "spec",
            include_str!("../../../../policy/spec.rego"),
            include_str!("../../../../policy/spec_test.rego"),
        ),
        (
            "schema",
            include_str!("../../../../policy/schema.rego"),
            include_str!("../../../../policy/schema_test.rego"),
        ),
        (
            "static",
            include_str!("../../../../policy/static.rego"),
            include_str!("../../../../policy/static_test.rego"),
        ),
        (
            "build",
            include_str!("../../../../policy/build.rego"),
            include_str!("../../../../policy/build_test.rego"),
        ),
        (
            "unit",
            include_str!("../../../../policy/unit.rego"),
            include_str!("../../../../policy/unit_test.rego"),
        ),
        (
            "integration",
            include_str!("../../../../policy/integration.rego"),
            include_str!("../../../../policy/integration_test.rego"),
        ),
        (
            "security",
            include_str!("../../../../policy/security.rego"),
            include_str!("../../../../policy/security_test.rego"),
        ),
        (
            "perf",
            include_str!("../../../../policy/perf.rego"),
            include_str!("../../../../policy/perf_test.rego"),
        ),
        (
            "chaos",
            include_str!("../../../../policy/chaos.rego"),
            include_str!("../../../../policy/chaos_test.rego"),
        ),
        (
            "observability",
            include_str!("../../../../policy/observability.rego"),
            include_str!("../../../../policy/observability_test.rego"),
        ),
        (
            "compat",
            include_str!("../../../../policy/compat.rego"),
            include_str!("../../../../policy/compat_test.rego"),
        ),
        (
            "deploy",
            include_str!("../../../../policy/deploy.rego"),
            include_str!("../../../../policy/deploy_test.rego"),
        ),
    ];

    fn sources(stage: &str) -> Vec<(String, String)> {
        let (_, common, _) = POLICIES[0];
        let (_, policy, test) = POLICIES
            .iter()
            .find(|(name, _, _)| *name == stage)
            .copied()
            .unwrap_or_default();
        let mut sources = vec![("common.rego".to_owned(), common.to_owned())];
        if stage != "common" {
            sources.push((format!("{stage}.rego"), policy.to_owned()));
        }
        sources.push((format!("{stage}_test.rego"), test.to_owned()));
        sources
    }

    // AC-ACES-12; AC-ACES-17 and AC-ACES-18: unit_test.rego and perf_test.rego plant a violation of
    // each coverage floor and each perf rule, and these rules must see it.
    #[test]
    fn every_stage_has_a_policy_with_tests_and_all_test_rules_hold() {
        for stage in super::super::STAGES.iter().copied().chain(["common"]) {
            let outcomes = run_tests(&sources(stage)).unwrap();
            assert!(
                outcomes.len() >= 2,
                "{stage}: too few test_* rules ({})",
                outcomes.len()
            );
            let failed: Vec<&str> = outcomes
                .iter()
                .filter(|o| !o.passed)
                .map(|o| o.rule.as_str())
                .collect();
            assert!(
                failed.is_empty(),
                "{stage}: failing policy tests {failed:?}"
            );
        }
    }

    // AC-ACES-12: a broken test rule is reported as failed, so the check above can fail.
    #[test]
    fn a_false_test_rule_is_reported_as_failed() {
        let mut srcs = sources("build");
        srcs.last_mut()
            .unwrap()
            .1
            .push_str("\ntest_wrong if {\n\tcount(deny) == 1 with input as {\"checks\": {}}\n}\n");
        let outcomes = run_tests(&srcs).unwrap();
        let wrong = outcomes.iter().find(|o| o.rule == "test_wrong").unwrap();
        assert!(!wrong.passed);
    }

    // AC-ACES-13
    #[test]
    fn a_missing_policy_fails_the_stage_closed() {
        let verdict = judge(Path::new("/nonexistent/policy"), "spec", "{}");
        assert_eq!(verdict.deny.len(), 1);
        assert!(
            verdict.deny[0].contains("fail closed"),
            "{:?}",
            verdict.deny
        );
    }

    #[test]
    fn evaluate_returns_deny_messages_and_the_checks_not_run() {
        let srcs = &sources("static")[..2];
        let facts = r#"{"stage":"static","full":false,"checks":{"forbidden":{"ran":true,"unwrap":[{"path":"a.rs","line":1,"text":"x.unwrap()"}],"todo":[]},"clippy":{"ran":false,"skipped":{"reason":"r"}}}}"#;
        let evaluation = evaluate(srcs, facts).unwrap();
        assert_eq!(
            evaluation.deny,
            vec!["static: unwrap()/expect() outside tests at a.rs:1: x.unwrap()".to_owned()]
        );
        assert_eq!(
            evaluation.not_run,
            BTreeMap::from([
                ("clippy".to_owned(), "r".to_owned()),
                ("deny".to_owned(), "no facts recorded".to_owned()),
                ("fmt".to_owned(), "no facts recorded".to_owned()),
            ])
        );
    }

    // AC-ACES-16: a check the policies saw skipped is not counted as judged.
    #[test]
    fn a_skipped_check_is_not_judged() {
        let facts = r#"{"stage":"perf","full":false,"checks":{"bench":{"ran":false,"skipped":{"reason":"runs in --full"}}}}"#;
        let verdict = verdict("perf", evaluate(&sources("perf")[..2], facts), facts);
        assert!(verdict.deny.is_empty(), "{:?}", verdict.deny);
        assert!(verdict.judged.is_empty());
        assert_eq!(
            verdict.not_judged,
            vec![("bench".to_owned(), "runs in --full".to_owned())]
        );
    }
}

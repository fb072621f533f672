//! `cargo xtask ci`: the ACES stages as code (specs/aces.md). Each stage collects facts, Rego judges them.

mod facts;
mod git;
mod policy;
mod report;
pub(crate) mod scan;
mod stages;

use std::path::PathBuf;

use anyhow::{Context as _, Result};

pub(crate) use facts::Ctx;

/// The twelve ACES stages, in pipeline order.
pub(crate) const STAGES: [&str; 12] = [
    "spec",
    "schema",
    "static",
    "build",
    "unit",
    "integration",
    "security",
    "perf",
    "chaos",
    "observability",
    "compat",
    "deploy",
];

/// The order facts are collected in: pipeline order, except `build` last. Its `repro` check cleans
/// and rebuilds `arq`, which would take away the binaries the coverage report maps profiles to
/// and the test binaries the deploy simulation runs. Verdicts are reported in pipeline order.
fn collection_order<'a>(selected: &[&'a str]) -> Vec<&'a str> {
    let mut order: Vec<&str> = selected.iter().copied().filter(|s| *s != "build").collect();
    order.extend(selected.iter().copied().filter(|s| *s == "build"));
    order
}

/// Arguments of `cargo xtask ci`.
#[derive(Debug, clap::Args)]
pub(crate) struct CiArgs {
    /// Run only these stages (repeatable); default: all twelve.
    #[arg(long = "stage", value_parser = clap::builder::PossibleValuesParser::new(STAGES))]
    stages: Vec<String>,
    /// The full tier: run the slow checks too, and deny every required check that did not run.
    #[arg(long)]
    full: bool,
    /// Git revision the change is compared against (contract changes, secrets in history).
    #[arg(long)]
    base: Option<String>,
    /// A pull-request description written from `.github/PULL_REQUEST_TEMPLATE.md`.
    #[arg(long)]
    pr: Option<PathBuf>,
    /// The tree to check (default: the current directory).
    #[arg(long, default_value = ".")]
    root: PathBuf,
    /// Result files of tools that ran elsewhere (default: <root>/target/aces/results).
    #[arg(long)]
    results: Option<PathBuf>,
    /// Only evaluate the `test_*` rules of policy/*_test.rego (like `conftest verify`).
    #[arg(long)]
    verify_policies: bool,
}

/// Runs the command; `Ok(false)` means a policy denied (or a policy test failed).
pub(crate) fn run(args: &CiArgs) -> Result<bool> {
    let root = std::fs::canonicalize(&args.root)
        .with_context(|| format!("--root {}", args.root.display()))?;
    let policy_dir = root.join("policy");
    if args.verify_policies {
        let outcomes = policy::verify_dir(&policy_dir)?;
        for outcome in &outcomes {
            let mark = if outcome.passed { "PASS" } else { "FAIL" };
            println!("{mark} {}: {}", outcome.file, outcome.rule);
        }
        let failed = outcomes.iter().filter(|o| !o.passed).count();
        println!("{} policy tests, {failed} failed", outcomes.len());
        return Ok(failed == 0 && !outcomes.is_empty());
    }
    let ctx = Ctx::new(
        root.clone(),
        args.full,
        args.base.clone(),
        args.pr.clone(),
        args.results.clone(),
    );
    let selected: Vec<&str> = if args.stages.is_empty() {
        STAGES.to_vec()
    } else {
        STAGES
            .iter()
            .copied()
            .filter(|s| args.stages.iter().any(|a| a == s))
            .collect()
    };
    let out_dir = root.join("target").join("aces");
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let started = std::time::Instant::now();
    let mut verdicts = Vec::new();
    for stage in collection_order(&selected) {
        let facts = stages::collect(&ctx, stage);
        let path = out_dir.join(format!("{stage}.json"));
        let text = serde_json::to_string_pretty(&facts)?;
        std::fs::write(&path, &text).with_context(|| format!("writing {}", path.display()))?;
        verdicts.push(policy::judge(&policy_dir, stage, &text));
    }
    verdicts.sort_by_key(|v| STAGES.iter().position(|s| *s == v.stage));
    let table = report::table(&verdicts);
    print!("{table}");
    let report_path = out_dir.join("report.md");
    let markdown = report::markdown(&verdicts, args.full, started.elapsed());
    std::fs::write(&report_path, markdown)
        .with_context(|| format!("writing {}", report_path.display()))?;
    println!("facts and report: {}", out_dir.display());
    Ok(verdicts.iter().all(|v| v.deny.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_is_collected_last_and_the_rest_in_pipeline_order() {
        let order = collection_order(&STAGES);
        assert_eq!(order.last(), Some(&"build"));
        assert_eq!(order.len(), STAGES.len());
        assert_eq!(&order[..3], &["spec", "schema", "static"]);
        assert_eq!(order[3], "unit");
        assert_eq!(collection_order(&["perf", "unit"]), vec!["perf", "unit"]);
    }
}

//! Stages read from the Rust sources: 3 static analysis, 5 unit tests and coverage, 10 observability.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::super::facts::{Ctx, Facts, Needs, Tool, ran, tool_check};
use super::super::scan::{self, Finding};
use super::rust_sources;

/// Trees scanned for work markers without an issue, and the file kinds that count as source there.
const TODO_ROOTS: [&str; 8] = [
    "crates", "model", "fuzz", "sdk", "proto", "policy", "ci", "deploy",
];
const TODO_EXTS: [&str; 9] = [
    "rs", "proto", "py", "sh", "toml", "rego", "yaml", "yml", "ts",
];

/// Every file under the given trees, read, as `(path, text)`.
fn read_all<'a>(ctx: &'a Ctx, paths: impl IntoIterator<Item = &'a str>) -> Vec<(&'a str, String)> {
    paths
        .into_iter()
        .filter_map(|p| ctx.read(p).map(|t| (p, t)))
        .collect()
}

fn findings(sources: &[(&str, String)], scan: fn(&str, &str) -> Vec<Finding>) -> Vec<Finding> {
    sources
        .iter()
        .flat_map(|(path, text)| scan(path, text))
        .collect()
}

pub(super) fn static_analysis(ctx: &Ctx, facts: &mut Facts) {
    let mut fmt = Tool::new(
        "fmt",
        "cargo",
        &["fmt", "--all", "--", "--check"],
        Needs::Binary("cargo"),
    );
    fmt.figures = |out| {
        let files: BTreeSet<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("Diff in "))
            .filter_map(|l| l.split(':').next())
            .collect();
        Map::from_iter([("unformatted".to_owned(), json!(files))])
    };
    facts.add("fmt", tool_check(ctx, &fmt));

    let sources = read_all(ctx, rust_sources(ctx));
    let todo_paths = TODO_ROOTS
        .iter()
        .flat_map(|root| ctx.files_under(root, &TODO_EXTS));
    let todo_sources = read_all(ctx, todo_paths);
    facts.add(
        "forbidden",
        ran(json!({
            "files_scanned": sources.len() + todo_sources.len(),
            "unwrap": findings(&sources, scan::forbidden_calls),
            "todo": findings(&todo_sources, scan::todos_without_issue),
        })),
    );

    let clippy = Tool::new(
        "clippy",
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--locked",
            "--",
            "-D",
            "warnings",
        ],
        Needs::Binary("cargo"),
    )
    .full_only();
    facts.add("clippy", tool_check(ctx, &clippy));

    let mut deny = Tool::new(
        "deny",
        "cargo",
        &["deny", "check"],
        Needs::Binary("cargo-deny"),
    );
    deny.figures = |out| {
        let fetch_failed = out.contains("failed to fetch") || out.contains("advisory database");
        Map::from_iter([("advisories_ran".to_owned(), Value::Bool(!fetch_failed))])
    };
    facts.add("deny", tool_check(ctx, &deny));
}

pub(super) fn unit(ctx: &Ctx, facts: &mut Facts) {
    let tests = read_all(
        ctx,
        ["crates", "model"]
            .iter()
            .flat_map(|root| ctx.files_under(root, &["rs"])),
    );
    facts.add(
        "seeds",
        ran(json!({"files_scanned": tests.len(), "findings": findings(&tests, scan::unseeded_randomness)})),
    );
    let nextest = Tool::new(
        "nextest",
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ],
        Needs::Binary("cargo-nextest"),
    )
    .full_only();
    facts.add("nextest", tool_check(ctx, &nextest));
    let mut coverage = Tool::new(
        "coverage",
        "cargo",
        &[
            "llvm-cov",
            "nextest",
            "--locked",
            "-p",
            "arqon-core",
            "-p",
            "arqon-proto",
            "-p",
            "arqon-auth",
            "--summary-only",
            "--json",
        ],
        Needs::Binary("cargo-llvm-cov"),
    )
    .full_only();
    coverage.figures = |out| {
        let percent = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find_map(|v| v.pointer("/data/0/totals/lines/percent").cloned());
        percent
            .map(|p| Map::from_iter([("line_percent".to_owned(), p)]))
            .unwrap_or_default()
    };
    facts.add("coverage", tool_check(ctx, &coverage));
}

pub(super) fn observability(ctx: &Ctx, facts: &mut Facts) {
    let sources = read_all(ctx, rust_sources(ctx));
    let names: Vec<scan::MetricName> = sources
        .iter()
        .flat_map(|(p, t)| scan::metric_names(p, t))
        .collect();
    let unique: BTreeSet<&str> = names.iter().map(|m| m.name.as_str()).collect();
    let bad: Vec<&scan::MetricName> = names
        .iter()
        .filter(|m| !scan::is_good_metric_name(&m.name))
        .collect();
    facts.add("metrics", ran(json!({"names": unique, "bad": bad})));
    let leaks: Vec<scan::LogLeak> = sources
        .iter()
        .flat_map(|(p, t)| scan::log_leaks(p, t))
        .collect();
    facts.add(
        "logs",
        ran(json!({"files_scanned": sources.len(), "findings": leaks})),
    );
    let spans: BTreeSet<String> = sources
        .iter()
        .flat_map(|(p, t)| scan::spans(p, t))
        .collect();
    facts.add("spans", ran(json!({"names": spans})));
}

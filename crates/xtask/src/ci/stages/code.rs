//! Stages read from the Rust sources: 3 static analysis, 5 unit tests and coverage, 10 observability.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use super::super::facts::{Ctx, Facts, Needs, Tool, ran, tool_check};
use super::super::scan::{self, Finding};

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
    fmt.figures = Box::new(|out: &str| {
        let files: BTreeSet<&str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("Diff in "))
            .filter_map(|l| l.split(':').next())
            .collect();
        Map::from_iter([("unformatted".to_owned(), json!(files))])
    });
    facts.add("fmt", tool_check(ctx, &fmt));

    let sources = read_all(ctx, ctx.rust_sources());
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
    deny.figures = Box::new(|out: &str| {
        let fetch_failed = out.contains("failed to fetch") || out.contains("advisory database");
        Map::from_iter([("advisories_ran".to_owned(), Value::Bool(!fetch_failed))])
    });
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
    facts.add("coverage", tool_check(ctx, &coverage_tool(ctx)));
}

/// Where the coverage report of `cargo llvm-cov` is written, relative to the root.
const COVERAGE_JSON: &str = "target/aces/llvm-cov.json";

/// `cargo llvm-cov`. In a shell where the tests ran instrumented (`ci/test` exports `cargo llvm-cov
/// show-env`, so the one test build is the instrumented one), the report of that run; otherwise,
/// in `--full`, an instrumented run of its own.
fn coverage_tool(ctx: &Ctx) -> Tool {
    let instrumented = std::env::var_os("CARGO_LLVM_COV_SHOW_ENV").is_some();
    let mut args = if instrumented {
        vec!["llvm-cov", "report"]
    } else {
        vec![
            "llvm-cov",
            "nextest",
            "--workspace",
            "--locked",
            "--no-fail-fast",
        ]
    };
    args.extend(["--json", "--summary-only", "--output-path", COVERAGE_JSON]);
    let mut tool = Tool::new("coverage", "cargo", &args, Needs::Binary("cargo-llvm-cov"));
    if !instrumented {
        tool = tool.full_only();
    }
    let report = ctx.root.join(COVERAGE_JSON);
    tool.figures = Box::new(move |_| {
        std::fs::read_to_string(&report)
            .ok()
            .and_then(|text| serde_json::from_str::<Value>(&text).ok())
            .map(|json| coverage_figures(&json))
            .unwrap_or_default()
    });
    tool
}

/// Line coverage per workspace crate (`crates/<name>/src`, `model/src`) and in total, from the JSON
/// export of `cargo llvm-cov --summary-only`.
pub(crate) fn coverage_figures(report: &Value) -> Map<String, Value> {
    let mut per_crate: std::collections::BTreeMap<String, (u64, u64)> =
        std::collections::BTreeMap::new();
    let files = report
        .pointer("/data/0/files")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    for file in files {
        let name = file.get("filename").and_then(Value::as_str).unwrap_or("");
        let Some(krate) = crate_of(name) else {
            continue;
        };
        let count = file
            .pointer("/summary/lines/count")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let covered = file
            .pointer("/summary/lines/covered")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let entry = per_crate.entry(krate).or_default();
        entry.0 += covered;
        entry.1 += count;
    }
    let percent = |covered: u64, count: u64| {
        if count == 0 {
            0.0
        } else {
            // Rounded to a tenth of a percent; line counts stay far below 2^52.
            #[allow(clippy::cast_precision_loss)]
            let p = covered as f64 * 100.0 / count as f64;
            (p * 10.0).round() / 10.0
        }
    };
    let (covered, count) = per_crate
        .values()
        .fold((0, 0), |(a, b), (c, n)| (a + c, b + n));
    let crates: Map<String, Value> = per_crate
        .into_iter()
        .map(|(name, (c, n))| {
            (
                name,
                json!({"lines": n, "covered": c, "percent": percent(c, n)}),
            )
        })
        .collect();
    Map::from_iter([
        ("line_percent".to_owned(), json!(percent(covered, count))),
        ("crates".to_owned(), Value::Object(crates)),
    ])
}

/// The workspace crate a source file belongs to: `…/crates/<name>/src/…` or `…/model/src/…`.
fn crate_of(filename: &str) -> Option<String> {
    let path = filename.replace('\\', "/");
    if let Some((_, rest)) = path.rsplit_once("/crates/") {
        let (name, inner) = rest.split_once('/')?;
        return inner.starts_with("src/").then(|| name.to_owned());
    }
    path.contains("/model/src/")
        .then(|| "arqon-model".to_owned())
}

pub(super) fn observability(ctx: &Ctx, facts: &mut Facts) {
    let sources = read_all(ctx, ctx.rust_sources());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, covered: u64, count: u64) -> Value {
        json!({"filename": name, "summary": {"lines": {"count": count, "covered": covered}}})
    }

    // AC-ACES-17: the figures the floors of policy/unit.rego read.
    #[test]
    fn coverage_is_summed_per_workspace_crate() {
        let report = json!({"data": [{"files": [
            file("/w/crates/arqon-core/src/session.rs", 90, 100),
            file("/w/crates/arqon-core/src/lease.rs", 10, 20),
            file("/w/crates/arqon-shield/src/conn.rs", 3, 4),
            file("/w/crates/arqon-shield/tests/it/x.rs", 0, 50),
            file("/w/model/src/suite.rs", 1, 2),
        ]}]});
        let figures = coverage_figures(&report);
        assert_eq!(figures["crates"]["arqon-core"]["percent"], json!(83.3));
        assert_eq!(figures["crates"]["arqon-core"]["lines"], json!(120));
        assert_eq!(figures["crates"]["arqon-shield"]["percent"], json!(75.0));
        assert_eq!(figures["crates"]["arqon-model"]["covered"], json!(1));
        assert!(figures["crates"].get("x").is_none());
        assert_eq!(figures["line_percent"], json!(82.5));
    }
}

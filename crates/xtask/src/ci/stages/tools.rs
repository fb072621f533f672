//! Stages that mostly run other tools or read their results: 2 schema, 4 build, 6 integration,
//! 8 perf, 9 chaos, 11 compat (plus its golden-vector count) and 12 deploy.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::super::facts::{Ctx, Facts, Needs, Tool, error, find_on_path, ran, skipped, tool_check};

/// The last line of a tool's output that is a JSON object: its figures (scripts print one).
fn json_tail(out: &str) -> Map<String, Value> {
    out.lines()
        .rev()
        .find_map(|l| match serde_json::from_str::<Value>(l.trim()) {
            Ok(Value::Object(map)) => Some(map),
            _ => None,
        })
        .unwrap_or_default()
}

/// A repository script, run with bash, whose last JSON line carries its figures.
fn script(name: &'static str, path: &'static str) -> Tool {
    let mut tool = Tool::new(name, "bash", &[path], Needs::File(path));
    tool.figures = Box::new(json_tail);
    tool
}

fn buf() -> Tool {
    script("buf", "ci/buf.sh")
}

pub(super) fn schema(ctx: &Ctx, facts: &mut Facts) {
    facts.add("buf", tool_check(ctx, &buf()));
    facts.add(
        "gen",
        tool_check(ctx, &Tool::xtask("gen", &["gen", "--check"])),
    );
    facts.add(
        "model",
        tool_check(ctx, &Tool::xtask("model", &["verify"]).full_only()),
    );
    let mut transitions = Tool::xtask("transitions", &["transitions"]);
    transitions.figures = Box::new(json_tail);
    facts.add("transitions", tool_check(ctx, &transitions));
}

pub(super) fn build(ctx: &Ctx, facts: &mut Facts) {
    let result_file = Tool::new("repro", "", &[], Needs::ResultOnly("`cargo xtask ci`"));
    let check = if !ctx.root.join("crates/arq/Cargo.toml").is_file() {
        tool_check(ctx, &result_file)
    } else if ctx.full {
        reproducible_build(&ctx.root, "release")
    } else {
        reproducible_build(&ctx.root, "dev")
    };
    facts.add("repro", check);
}

/// Builds the `arq` binary twice with `profile` (`dev` in the fast tier, reusing the test build's
/// dependencies; `release` in `--full`), cleaning the `arq` package in between, and hashes both
/// binaries. Both tiers rebuild the same thing, the `arq` crate and its link, from the same inputs.
fn reproducible_build(root: &Path, profile: &str) -> Value {
    let dir = if profile == "dev" { "debug" } else { profile };
    let binary = root.join("target").join(dir).join("arq");
    let mut hashes = Vec::new();
    for round in 0..2 {
        if round == 1
            && let Err(e) = cargo(root, &["clean", "--profile", profile, "-p", "arq"])
        {
            return error(&e);
        }
        if let Err(e) = cargo(
            root,
            &["build", "--profile", profile, "--locked", "-p", "arq"],
        ) {
            return error(&e);
        }
        match std::fs::read(&binary) {
            Ok(bytes) => hashes.push(format!("{:x}", Sha256::digest(&bytes))),
            Err(e) => return error(&format!("cannot read {}: {e}", binary.display())),
        }
    }
    let ok = hashes.windows(2).all(|w| w[0] == w[1]);
    ran(json!({
        "ok": ok,
        "hashes": hashes,
        "profile": profile,
        "binary": format!("target/{dir}/arq"),
    }))
}

fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    let status = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| e.to_string())?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

pub(super) fn integration(ctx: &Ctx, facts: &mut Facts) {
    let nats = find_on_path("nats-server");
    facts.add(
        "nats",
        ran(json!({"present": nats.is_some(), "path": nats.map(|p| p.display().to_string())})),
    );
    let mut topology = Tool::new(
        "topology",
        "cargo",
        &[
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-tests=pass",
            "-E",
            "test(/topology|cluster/)",
        ],
        Needs::Binary("cargo-nextest"),
    )
    .full_only();
    topology.figures = Box::new(|out: &str| {
        // nextest's summary line: `Summary [ 1.2s] 6 tests run: 6 passed, 0 skipped`.
        let run = out
            .lines()
            .rev()
            .filter_map(|l| l.split_once(" tests run").map(|(before, _)| before))
            .find_map(|before| {
                before
                    .split_whitespace()
                    .last()
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(0);
        Map::from_iter([("tests_run".to_owned(), json!(run))])
    });
    facts.add("topology", tool_check(ctx, &topology));
}

pub(super) fn perf(ctx: &Ctx, facts: &mut Facts) {
    facts.add(
        "bench",
        tool_check(ctx, &script("bench", "ci/bench.sh").full_only()),
    );
}

pub(super) fn chaos(ctx: &Ctx, facts: &mut Facts) {
    facts.add(
        "fuzz",
        tool_check(ctx, &script("fuzz", "ci/fuzz.sh").full_only()),
    );
}

pub(super) fn deploy(ctx: &Ctx, facts: &mut Facts) {
    facts.add(
        "simulation",
        tool_check(ctx, &script("simulation", "ci/deploy_sim.sh")),
    );
}

pub(super) fn compat(ctx: &Ctx, facts: &mut Facts) {
    let messages: BTreeSet<String> = ctx
        .files_under("proto", &["proto"])
        .into_iter()
        .filter_map(|p| ctx.read(p))
        .flat_map(|text| top_level_messages(&text))
        .collect();
    if messages.is_empty() {
        facts.add("golden", skipped("no message in proto/"));
    } else {
        let golden: Vec<(String, String)> = ctx
            .files_under("golden", &[])
            .into_iter()
            .filter_map(|p| ctx.read(p).map(|t| (p.to_owned(), t)))
            .collect();
        let missing = without_vectors(&messages, &golden);
        facts.add(
            "golden",
            ran(json!({"messages": messages.len(), "vectors": golden.len(), "missing": missing})),
        );
    }
    facts.add("buf", tool_check(ctx, &buf()));
    let old_client = Tool::new(
        "old_client",
        "",
        &[],
        Needs::ResultOnly("the old-client compatibility test"),
    );
    facts.add("old_client", tool_check(ctx, &old_client));
}

/// Names of the messages declared at the top level of a `.proto` file.
pub(crate) fn top_level_messages(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("message "))
        .filter_map(|rest| {
            rest.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .next()
        })
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Messages with no golden vector: no file named after them (`presence_update.snap` for
/// `PresenceUpdate`) and no file that names them, as a type or as a field (`presenceUpdate`,
/// `members` for `Member`).
pub(crate) fn without_vectors<'a>(
    messages: &'a BTreeSet<String>,
    golden: &[(String, String)],
) -> Vec<&'a str> {
    let normal = |s: &str| {
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    let words: BTreeSet<String> = golden
        .iter()
        .flat_map(|(path, text)| {
            let stem = path
                .rsplit('/')
                .next()
                .map(|n| n.split('.').next().unwrap_or(n));
            stem.into_iter()
                .chain(text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        })
        .map(normal)
        .collect();
    messages
        .iter()
        .filter(|m| {
            let name = normal(m);
            !words.contains(&name) && !words.contains(&format!("{name}s"))
        })
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-ACES-9
    #[test]
    fn every_top_level_message_needs_a_vector() {
        let proto = "syntax = \"proto3\";\nmessage Envelope {\n  message Inner {}\n}\nmessage PresenceUpdate {}\nmessage Welcome{}\n";
        let messages: BTreeSet<String> = top_level_messages(proto).into_iter().collect();
        assert_eq!(messages.len(), 3);
        let golden = vec![
            (
                "golden/messages/presence_update.json".to_owned(),
                "{}".to_owned(),
            ),
            (
                "golden/all.json".to_owned(),
                "{\"type\": \"arqon.v1.Envelope\"}".to_owned(),
            ),
        ];
        assert_eq!(without_vectors(&messages, &golden), vec!["Welcome"]);
    }

    #[test]
    fn json_tail_reads_the_last_json_line() {
        let out = "building\n{\"benches\": [1]}\nnoise\n";
        assert_eq!(json_tail(out).get("benches"), Some(&json!([1])));
        assert!(json_tail("no json").is_empty());
    }
}

//! Stage 7, security: secrets in the tree and in the change, TLS in non-dev configs, the attack suites.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::super::facts::{Ctx, Facts, Needs, Tool, ran, skipped, tool_check};
use super::super::git;
use super::super::scan::{self, Secret};

/// Paths (exact, or a directory ending in `/`) whose secret candidates are test fixtures.
const ALLOWLIST: &str = "policy/secrets_allow.txt";

pub(super) fn collect(ctx: &Ctx, facts: &mut Facts) {
    let allow = ctx
        .read(ALLOWLIST)
        .map(|t| parse_allowlist(&t))
        .unwrap_or_default();
    let mut used = BTreeSet::new();

    let mut tree = Vec::new();
    let mut scanned = 0usize;
    for path in ctx.files() {
        if path == ALLOWLIST {
            continue;
        }
        let Some(text) = ctx.read(path) else { continue };
        scanned += 1;
        tree.extend(scan::secrets(path, &text));
    }
    let (tree, allowed) = apply_allowlist(tree, &allow, &mut used);
    let history = history(ctx, &allow, &mut used);
    let unused: Vec<&String> = allow
        .iter()
        .filter(|a| !used.contains(a.as_str()))
        .collect();
    facts.add(
        "secrets",
        ran(json!({"files_scanned": scanned, "findings": tree, "allowed": allowed, "unused_allow": unused})),
    );
    facts.add("history", history);
    facts.add("tls", tls(ctx));
    let suites = Tool::new(
        "suites",
        "cargo",
        &[
            "nextest",
            "run",
            "--locked",
            "--no-fail-fast",
            "-p",
            "arqon-auth",
            "-p",
            "arqon-policy",
        ],
        Needs::Binary("cargo-nextest"),
    )
    .full_only();
    facts.add("suites", tool_check(ctx, &suites));
}

/// One path per line, `#` starts a comment (the reason).
pub(crate) fn parse_allowlist(text: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

fn allowed_by<'a>(allow: &'a [String], path: &str) -> Option<&'a str> {
    allow
        .iter()
        .map(String::as_str)
        .find(|a| path == *a || (a.ends_with('/') && path.starts_with(a)))
}

/// Splits findings into those still denied and the count the allowlist excused.
fn apply_allowlist<'a>(
    found: Vec<Secret>,
    allow: &'a [String],
    used: &mut BTreeSet<&'a str>,
) -> (Vec<Secret>, usize) {
    let mut kept = Vec::new();
    let mut allowed = 0;
    for secret in found {
        if let Some(entry) = allowed_by(allow, &secret.path) {
            used.insert(entry);
            allowed += 1;
        } else {
            kept.push(secret);
        }
    }
    (kept, allowed)
}

/// The same scan over the lines the change's commits added.
fn history<'a>(ctx: &Ctx, allow: &'a [String], used: &mut BTreeSet<&'a str>) -> Value {
    let Some(base) = &ctx.base else {
        return skipped("no --base given");
    };
    let added = match git::added_lines(&ctx.root, base) {
        Ok(added) => added,
        Err(e) => return skipped(&e),
    };
    let mut findings = Vec::new();
    for (i, line) in added.iter().enumerate() {
        let next = added
            .get(i + 1)
            .filter(|n| n.path == line.path)
            .map(|n| n.text.as_str());
        for secret in scan::secrets_in_line(&line.path, line.line, &line.text, next) {
            if let Some(entry) = allowed_by(allow, &secret.path) {
                used.insert(entry);
            } else {
                let mut finding = json!(secret);
                finding["commit"] = json!(line.commit);
                findings.push(finding);
            }
        }
    }
    ran(json!({"base": base, "lines_scanned": added.len(), "findings": findings}))
}

/// Every `deploy/**/*.toml`: dev or not, and whether it enables TLS.
fn tls(ctx: &Ctx) -> Value {
    let configs: Vec<Value> = ctx
        .files_under("deploy", &["toml"])
        .into_iter()
        .filter_map(|path| ctx.read(path).map(|text| (path, text)))
        .map(|(path, text)| {
            let (dev, tls, why) = tls_verdict(path, &text);
            json!({"path": path, "dev": dev, "tls": tls, "why": why})
        })
        .collect();
    ran(json!({"configs": configs}))
}

/// A config is dev when its file name says so or it sets `dev = true` (top level or `[dev] enabled`).
/// TLS is enforced when some `tls` table exists, is not `enabled = false`, and names its material.
pub(crate) fn tls_verdict(path: &str, text: &str) -> (bool, bool, String) {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    let table = match text.parse::<toml::Table>() {
        Ok(table) => table,
        Err(e) => {
            return (
                name.contains("dev"),
                false,
                format!("not valid TOML: {}", e.message()),
            );
        }
    };
    let dev = name.contains("dev") || dev_flag(&table);
    let Some(tls) = find_table(&table, "tls") else {
        return (dev, false, "no [tls] table".to_owned());
    };
    if tls.get("enabled").and_then(toml::Value::as_bool) == Some(false) {
        return (dev, false, "tls.enabled = false".to_owned());
    }
    let has_material =
        tls.keys().any(|k| k.contains("cert")) && tls.keys().any(|k| k.contains("key"));
    if has_material {
        (dev, true, String::new())
    } else {
        (
            dev,
            false,
            "the [tls] table names no certificate and key".to_owned(),
        )
    }
}

/// `dev = true` in any table (`[node] dev = true` in `arqon.toml`), or a `[dev]` table with
/// `enabled = true`.
fn dev_flag(table: &toml::Table) -> bool {
    table.iter().any(|(key, value)| match value {
        toml::Value::Boolean(on) => key == "dev" && *on,
        toml::Value::Table(inner) => {
            (key == "dev" && inner.get("enabled").and_then(toml::Value::as_bool) == Some(true))
                || dev_flag(inner)
        }
        _ => false,
    })
}

fn find_table<'a>(table: &'a toml::Table, name: &str) -> Option<&'a toml::Table> {
    if let Some(found) = table.get(name).and_then(toml::Value::as_table) {
        return Some(found);
    }
    table
        .values()
        .filter_map(toml::Value::as_table)
        .find_map(|t| find_table(t, name))
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-ACES-7
    #[test]
    fn tls_is_required_outside_dev_configs() {
        let with_tls = "[shield]\nlisten = \"0.0.0.0:443\"\n[shield.tls]\ncert_file = \"/etc/a.pem\"\nkey_file = \"/etc/a.key\"\n";
        assert_eq!(
            tls_verdict("deploy/arqon.toml", with_tls),
            (false, true, String::new())
        );
        let (dev, tls, why) =
            tls_verdict("deploy/arqon.toml", "[shield]\nlisten = \"0.0.0.0:80\"\n");
        assert!(!dev && !tls);
        assert_eq!(why, "no [tls] table");
        assert!(tls_verdict("deploy/arqon.dev.toml", "").0);
        assert!(tls_verdict("deploy/x.toml", "dev = true\n").0);
        assert!(
            tls_verdict(
                "deploy/compose/node-1.toml",
                "[node]\nid = \"n\"\ndev = true\n"
            )
            .0
        );
        assert!(!tls_verdict("deploy/compose/node-1.toml", "[node]\ndev = false\n").0);
        assert_eq!(
            tls_verdict(
                "deploy/x.toml",
                "[tls]\nenabled = false\ncert = \"a\"\nkey = \"b\"\n"
            )
            .2,
            "tls.enabled = false"
        );
    }

    #[test]
    fn allowlist_entries_are_paths_with_reasons() {
        let allow = parse_allowlist("# fixtures\ncrates/a/tests/fixtures/  # test keys\nx.pem\n");
        assert_eq!(
            allow,
            vec!["crates/a/tests/fixtures/".to_owned(), "x.pem".to_owned()]
        );
        assert_eq!(
            allowed_by(&allow, "crates/a/tests/fixtures/k.pem"),
            Some("crates/a/tests/fixtures/")
        );
        assert_eq!(allowed_by(&allow, "x.pem.bak"), None);
    }
}

//! Stage 1, spec validation: sections, AC IDs, AC citations by tests, contract changes and the PR file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde_json::{Value, json};

use super::super::facts::{Ctx, Facts, error, ran, skipped};
use super::super::git;
use super::super::scan::is_test_path;

/// The sections every spec has (CONTRIBUTING.md), in order.
pub(crate) const SECTIONS: [&str; 7] = [
    "Problem",
    "Inputs and outputs",
    "Failure modes",
    "Security",
    "Performance budget",
    "Invariants",
    "Acceptance criteria",
];

/// The pull-request template a description is written from.
const TEMPLATE: &str = ".github/PULL_REQUEST_TEMPLATE.md";

/// PR template sections a description must fill (matched by their title, without the number).
const PR_SECTIONS: [&str; 6] = [
    "Overview",
    "Linked Spec",
    "State Machines & Protocol",
    "Invariants & Guarantees",
    "Security & Multi-Tenancy",
    "Testing",
];

/// Where tests live: the places whose citations count.
const TEST_ROOTS: [&str; 4] = ["crates", "model", "sdk", "fuzz"];

/// Paths that are the contract: a change to them needs a spec.
const CONTRACT_PATHS: [&str; 2] = ["proto/", "crates/arqon-core/src/"];

static AC_DEFINITION: LazyLock<Regex> = LazyLock::new(|| re(r"^\s*[-*]\s+\*\*(AC-[^*]*)\*\*"));
static AC_WELL_FORMED: LazyLock<Regex> = LazyLock::new(|| re(r"^AC-[A-Z]+-[0-9]+$"));
static AC_CITATION: LazyLock<Regex> = LazyLock::new(|| re(r"\bAC-[A-Z]+-[0-9]+\b"));
static SPEC_LINK: LazyLock<Regex> = LazyLock::new(|| re(r"specs/[A-Za-z0-9_.-]+\.md"));

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("bad built-in pattern {pattern}: {e}"))
}

pub(super) fn collect(ctx: &Ctx, facts: &mut Facts) {
    let specs: Vec<(String, String)> = ctx
        .files_under("specs", &["md"])
        .into_iter()
        .filter(|p| p.matches('/').count() == 1)
        .filter_map(|p| ctx.read(p).map(|text| (p.to_owned(), text)))
        .collect();
    let files: Vec<Value> = specs
        .iter()
        .filter_map(|(path, text)| {
            let missing = missing_sections(text);
            (!missing.is_empty()).then(|| json!({"path": path, "missing": missing}))
        })
        .collect();
    facts.add(
        "sections",
        ran(json!({"specs": specs.len(), "files": files})),
    );

    let mut defined: BTreeMap<String, String> = BTreeMap::new();
    let mut malformed = Vec::new();
    let mut without_acs = Vec::new();
    for (path, text) in &specs {
        let ids = ac_definitions(text);
        if !ids.iter().any(|(_, id)| AC_WELL_FORMED.is_match(id)) {
            without_acs.push(path.clone());
        }
        for (line, id) in ids {
            if !AC_WELL_FORMED.is_match(&id) {
                malformed.push(json!({"path": path, "line": line, "id": id}));
            } else if defined.insert(id.clone(), path.clone()).is_some() {
                malformed.push(
                    json!({"path": path, "line": line, "id": format!("{id} (defined twice)")}),
                );
            }
        }
    }
    facts.add(
        "ac_ids",
        ran(json!({"total": defined.len(), "without_acs": without_acs, "malformed": malformed})),
    );

    let cited = cited_acs(ctx);
    let uncited: Vec<Value> = defined
        .iter()
        .filter(|(id, _)| !cited.contains(id.as_str()))
        .map(|(id, path)| json!({"id": id, "path": path}))
        .collect();
    facts.add(
        "citations",
        ran(json!({"total": defined.len(), "cited": defined.len() - uncited.len(), "uncited": uncited})),
    );

    let template = ctx.read(TEMPLATE).unwrap_or_default();
    let pr_text = ctx.pr.as_ref().map(|p| {
        std::fs::read_to_string(p)
            .map(|text| author_text(&template, &text))
            .map_err(|e| format!("cannot read {}: {e}", p.display()))
    });
    facts.add(
        "change",
        change(
            ctx,
            pr_text
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(String::as_str),
        ),
    );
    facts.add(
        "pr",
        match (&ctx.pr, pr_text) {
            (Some(path), Some(Ok(text))) => pr(ctx, &path.display().to_string(), &text),
            (_, Some(Err(e))) => error(&e),
            _ => skipped("no --pr given"),
        },
    );
}

/// Required `## ` sections a spec lacks.
pub(crate) fn missing_sections(text: &str) -> Vec<&'static str> {
    let headings: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("## "))
        .map(str::trim)
        .collect();
    SECTIONS
        .iter()
        .copied()
        .filter(|s| !headings.contains(s))
        .collect()
}

/// AC definitions (`- **AC-…**`) with their line numbers, well formed or not.
pub(crate) fn ac_definitions(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, l)| {
            AC_DEFINITION
                .captures(l)
                .and_then(|c| c.get(1))
                .map(|m| (i + 1, m.as_str().to_owned()))
        })
        .collect()
}

/// AC IDs cited by test code under crates/, model/, sdk/ and fuzz/.
fn cited_acs(ctx: &Ctx) -> BTreeSet<String> {
    let mut cited = BTreeSet::new();
    for root in TEST_ROOTS {
        for path in ctx.files_under(root, &[]) {
            let Some(text) = ctx.read(path) else { continue };
            cited.extend(test_citations(path, &text));
        }
    }
    cited
}

/// The AC IDs a file cites from test code: the whole file for test paths, fuzz targets and Python
/// tests, else the part of a Rust file from its first `#[cfg(test)]` on.
pub(crate) fn test_citations(path: &str, text: &str) -> BTreeSet<String> {
    let name = path.rsplit('/').next().unwrap_or(path);
    let whole = is_test_path(path)
        || path.starts_with("fuzz/")
        || (has_ext(name, "py") && (name.starts_with("test_") || name.ends_with("_test.py")));
    let region = if whole {
        text
    } else if has_ext(path, "rs") {
        text.find("#[cfg(test)]").map_or("", |at| &text[at..])
    } else {
        ""
    };
    AC_CITATION
        .find_iter(region)
        .map(|m| m.as_str().to_owned())
        .collect()
}

fn has_ext(path: &str, ext: &str) -> bool {
    Path::new(path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

/// The change against `--base`: contract files touched, and the specs it changes or cites.
fn change(ctx: &Ctx, pr_text: Option<&str>) -> Value {
    let Some(base) = &ctx.base else {
        return skipped("no --base given");
    };
    let changed = match git::changed_files(&ctx.root, base) {
        Ok(changed) => changed,
        Err(e) => return skipped(&e),
    };
    let messages = git::commit_messages(&ctx.root, base).unwrap_or_default();
    let contract: Vec<&String> = changed
        .iter()
        .filter(|f| CONTRACT_PATHS.iter().any(|p| f.starts_with(p)))
        .collect();
    let mut cited: BTreeSet<String> = changed
        .iter()
        .filter(|f| f.starts_with("specs/") && has_ext(f, "md"))
        .cloned()
        .collect();
    for text in [messages.as_str(), pr_text.unwrap_or_default()] {
        cited.extend(SPEC_LINK.find_iter(text).map(|m| m.as_str().to_owned()));
    }
    ran(
        json!({"base": base, "changed": changed.len(), "contract_changed": contract, "specs_cited": cited}),
    )
}

/// The lines of a PR description that the template does not have: what its author wrote.
/// Headings are kept so that sections can still be found.
pub(crate) fn author_text(template: &str, text: &str) -> String {
    let template_lines: BTreeSet<&str> = template.lines().map(str::trim).collect();
    text.lines()
        .filter(|l| l.starts_with("## ") || !template_lines.contains(l.trim()))
        .flat_map(|l| [l, "\n"])
        .collect()
}

/// The PR description (its author's lines): spec links (and whether they exist) and required sections left unfilled.
fn pr(ctx: &Ctx, path: &str, text: &str) -> Value {
    let Some(template) = ctx.read(TEMPLATE) else {
        return error("no .github/PULL_REQUEST_TEMPLATE.md to compare the PR description with");
    };
    let links: BTreeSet<&str> = SPEC_LINK.find_iter(text).map(|m| m.as_str()).collect();
    let spec_links: Vec<Value> = links
        .iter()
        .map(|l| json!({"path": l, "exists": ctx.root.join(l).is_file()}))
        .collect();
    ran(
        json!({"path": path, "spec_links": spec_links, "unfilled": unfilled_sections(&template, text)}),
    )
}

/// Required sections that are missing, or hold nothing but the template's own lines: a filled
/// section has a ticked box or a line the author wrote.
pub(crate) fn unfilled_sections(template: &str, text: &str) -> Vec<&'static str> {
    let template_lines: BTreeSet<&str> = template.lines().map(str::trim).collect();
    let sections = split_sections(text);
    PR_SECTIONS
        .iter()
        .copied()
        .filter(|title| {
            let body = sections
                .iter()
                .find(|(heading, _)| heading_title(heading) == *title)
                .map(|(_, body)| body);
            !body.is_some_and(|lines| {
                lines.iter().any(|l| {
                    let l = l.trim();
                    l.contains("[x]")
                        || l.contains("[X]")
                        || (!l.is_empty() && !template_lines.contains(l))
                })
            })
        })
        .collect()
}

/// `## 2. Linked Spec (SDD)` → `Linked Spec`.
fn heading_title(heading: &str) -> &str {
    let title = heading.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' ');
    title.split(" (").next().unwrap_or(title).trim()
}

fn split_sections(text: &str) -> Vec<(&str, Vec<&str>)> {
    let mut sections: Vec<(&str, Vec<&str>)> = Vec::new();
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.push((heading.trim(), Vec::new()));
        } else if let Some((_, body)) = sections.last_mut() {
            body.push(line);
        }
    }
    sections
}

#[cfg(test)]
mod tests {
    use super::*;

    // AC-ACES-1
    #[test]
    fn a_spec_without_acceptance_criteria_misses_that_section() {
        let text = "# X\n## Problem\n## Inputs and outputs\n## Failure modes\n## Security\n## Performance budget\n## Invariants\n";
        assert_eq!(missing_sections(text), vec!["Acceptance criteria"]);
        assert!(missing_sections(&format!("{text}## Acceptance criteria\n")).is_empty());
    }

    // AC-ACES-2
    #[test]
    fn ac_definitions_keep_malformed_ids_for_the_policy() {
        let text = "## Acceptance criteria\n- **AC-SHIELD-1**: Given a, when b, then c.\n- **AC-shield-2**: x\nSee AC-<FEATURE>-<n>.\n";
        let ids = ac_definitions(text);
        assert_eq!(
            ids,
            vec![(2, "AC-SHIELD-1".to_owned()), (3, "AC-shield-2".to_owned())]
        );
        assert!(AC_WELL_FORMED.is_match(&ids[0].1));
        assert!(!AC_WELL_FORMED.is_match(&ids[1].1));
    }

    // AC-ACES-2
    #[test]
    fn only_test_code_cites_an_ac() {
        let lib = "// AC-X-1 in code\n#[cfg(test)]\nmod tests {\n    // AC-X-2\n}\n";
        assert_eq!(
            test_citations("crates/a/src/lib.rs", lib),
            BTreeSet::from(["AC-X-2".to_owned()])
        );
        assert_eq!(
            test_citations("crates/a/tests/it/x.rs", "// AC-X-3").len(),
            1
        );
        assert_eq!(
            test_citations("sdk/python/tests/test_a.py", "# AC-X-4, AC-X-45").len(),
            2
        );
        assert!(test_citations("crates/a/README.md", "AC-X-5").is_empty());
    }

    // AC-ACES-3
    #[test]
    fn pr_sections_count_as_filled_only_with_author_text_or_a_ticked_box() {
        let author = author_text(
            "> see specs/aces.md\n## 2. Linked Spec\n- Link(s): \n",
            "> see specs/aces.md\n## 2. Linked Spec\n- Link(s): specs/x.md\n",
        );
        assert_eq!(author, "## 2. Linked Spec\n- Link(s): specs/x.md\n");
        let template = "## 1. Overview\n\n- \n\n## 8. Testing\n\n- [ ] Added/updated unit tests\n";
        let filled = "## 1. Overview\n\n- Adds the thing.\n\n## 8. Testing\n\n- [x] Added/updated unit tests\n";
        let unfilled = unfilled_sections(template, filled);
        assert!(
            !unfilled.contains(&"Overview") && !unfilled.contains(&"Testing"),
            "{unfilled:?}"
        );
        assert!(unfilled.contains(&"Linked Spec"));
        let empty = unfilled_sections(template, template);
        assert!(empty.contains(&"Overview") && empty.contains(&"Testing"));
    }
}

//! Pattern scans over source text: forbidden calls, TODOs, unseeded randomness, metric names, sensitive
//! values in log macros, spans and secret candidates. Pure functions of (path, text).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

/// One finding: where, and the offending line (trimmed, shortened).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Finding {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) text: String,
}

impl Finding {
    fn new(path: &str, line: usize, text: &str) -> Self {
        Self {
            path: path.to_owned(),
            line,
            text: text.trim().chars().take(120).collect(),
        }
    }
}

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, checked by the unit tests below.
    Regex::new(pattern).unwrap_or_else(|e| unreachable!("bad built-in pattern {pattern}: {e}"))
}

static FORBIDDEN_CALL: LazyLock<Regex> = LazyLock::new(|| re(r"\.unwrap\(\)|\.expect\("));
static TODO: LazyLock<Regex> = LazyLock::new(|| re(r"\b(?:TODO|FIXME)\b"));
static ISSUE_REF: LazyLock<Regex> = LazyLock::new(|| re(r"#[0-9]+"));
static UNSEEDED: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\bthread_rng\(|\brand::random\b|\bfrom_entropy\(|\bOsRng\b|\brand::rng\(")
});
static METRIC_CALL: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"\b(?:counter|gauge|histogram|describe_counter|describe_gauge|describe_histogram|[uif]64_counter|[uif]64_up_down_counter|[uif]64_histogram|[uif]64_gauge)!?\(\s*"([^"]*)""#,
    )
});
static ARQONBUS_LITERAL: LazyLock<Regex> = LazyLock::new(|| re(r#""(arqonbus\.[^"]*)""#));
static METRIC_NAME: LazyLock<Regex> =
    LazyLock::new(|| re(r"^arqonbus\.[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$"));
static LOG_MACRO: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"\b(?:trace|debug|info|warn|error|event|trace_span|debug_span|info_span|warn_span|error_span|span)!\s*\(",
    )
});
static SENSITIVE_IDENT: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b(token|payload|password|secret|jwt|bearer|private_key)\b"));
static SENSITIVE_CAPTURE: LazyLock<Regex> =
    LazyLock::new(|| re(r"\{(token|payload|password|secret|jwt|bearer|private_key)(?::[^}]*)?\}"));
static SPAN: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"\b(?:trace_span|debug_span|info_span|warn_span|error_span)!\s*\(\s*"([^"]+)"|\bspan!\s*\([^,()]+,\s*"([^"]+)"|#\[(?:tracing::)?instrument"#,
    )
});

/// Kinds of secret candidates; the last applies to configuration files only.
static SECRETS: LazyLock<Vec<(&'static str, Regex)>> = LazyLock::new(|| {
    vec![
        (
            "private-key",
            re(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----"),
        ),
        ("aws-access-key", re(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b")),
        (
            "jwt",
            re(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),
        ),
        (
            "password-in-config",
            re(
                r#"(?:^|[^a-zA-Z])[Pp][Aa][Ss][Ss](?:[Ww][Oo][Rr][Dd]|[Ww][Dd])?\s*[=:]\s*["']?([^"'\s,}]+)"#,
            ),
        ),
    ]
});

/// Extensions treated as configuration for the `password=` rule.
const CONFIG_EXTS: [&str; 9] = [
    "toml",
    "yaml",
    "yml",
    "env",
    "ini",
    "conf",
    "cfg",
    "properties",
    "json",
];

/// Test code as a whole file: integration tests, benches, examples, build scripts, and test
/// modules kept in their own file (`tests.rs`, `test.rs`, `*_tests.rs`).
pub(crate) fn is_test_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path);
    path.split('/')
        .any(|part| matches!(part, "tests" | "benches" | "examples"))
        || matches!(name, "build.rs" | "tests.rs" | "test.rs")
        || name.ends_with("_tests.rs")
}

/// The 0-based index of the first `#[cfg(test)]` line; lines from there on are test code.
fn first_test_line(text: &str) -> usize {
    text.lines()
        .position(|l| l.trim_start().starts_with("#[cfg(test)]"))
        .unwrap_or(usize::MAX)
}

/// Non-test lines of a Rust file, numbered from 1.
fn code_lines<'a>(path: &str, text: &'a str) -> impl Iterator<Item = (usize, &'a str)> {
    let end = if is_test_path(path) {
        0
    } else {
        first_test_line(text)
    };
    text.lines()
        .enumerate()
        .take_while(move |(i, _)| *i < end)
        .map(|(i, l)| (i + 1, l))
}

/// Test lines of a Rust file, numbered from 1.
fn test_lines<'a>(path: &str, text: &'a str) -> impl Iterator<Item = (usize, &'a str)> {
    let start = if is_test_path(path) {
        0
    } else {
        first_test_line(text)
    };
    text.lines()
        .enumerate()
        .skip_while(move |(i, _)| *i < start)
        .map(|(i, l)| (i + 1, l))
}

/// The non-test part of a Rust file as one string (for multi-line scans) and its first line number.
pub(crate) fn code_text<'a>(path: &str, text: &'a str) -> &'a str {
    if is_test_path(path) {
        return "";
    }
    match first_test_line(text) {
        usize::MAX => text,
        n => {
            let offset: usize = text.lines().take(n).map(|l| l.len() + 1).sum();
            &text[..offset.min(text.len())]
        }
    }
}

/// Whether byte `pos` of `line` is inside a string literal (an odd number of unescaped quotes before it).
fn in_string(line: &str, pos: usize) -> bool {
    let before = &line[..pos];
    let mut quotes = 0;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            // A `'"'` char literal opens no string.
            '"' if !(before[..i].ends_with('\'') && line[i + 1..].starts_with('\'')) => quotes += 1,
            _ => {}
        }
    }
    quotes % 2 == 1
}

fn is_comment(line: &str) -> bool {
    line.trim_start().starts_with("//")
}

/// Matches of `pattern` outside comments and string literals.
fn code_matches<'a>(
    lines: impl Iterator<Item = (usize, &'a str)>,
    pattern: &Regex,
    path: &str,
) -> Vec<Finding> {
    lines
        .filter(|(_, l)| !is_comment(l))
        .filter(|(_, l)| pattern.find_iter(l).any(|m| !in_string(l, m.start())))
        .map(|(n, l)| Finding::new(path, n, l))
        .collect()
}

/// `unwrap()` / `expect(` in non-test Rust code.
/// A method of one's own named `expect` with several arguments (a test client's `expect(kind, f)`) is
/// not `Option::expect`/`Result::expect`.
pub(crate) fn forbidden_calls(path: &str, text: &str) -> Vec<Finding> {
    code_lines(path, text)
        .filter(|(_, l)| !is_comment(l))
        .filter(|(_, l)| {
            FORBIDDEN_CALL.find_iter(l).any(|m| {
                !in_string(l, m.start())
                    && (m.as_str().contains("unwrap") || !has_second_argument(&l[m.end()..]))
            })
        })
        .map(|(n, l)| Finding::new(path, n, l))
        .collect()
}

/// Whether a call's argument list (the text after its `(`) has a comma at its own depth on this line.
fn has_second_argument(rest: &str) -> bool {
    let (mut depth, mut in_str, mut escaped) = (0usize, false, false);
    for c in rest.chars() {
        if in_str {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return false,
            ')' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => return true,
            _ => {}
        }
    }
    false
}

/// Work markers (the two upper-case words of [`TODO`]) in a comment, not quoted in backticks, without
/// an issue reference `#<n>` on the same line.
pub(crate) fn todos_without_issue(path: &str, text: &str) -> Vec<Finding> {
    let hash_comments = [".sh", ".py", ".toml", ".rego", ".yaml", ".yml"]
        .iter()
        .any(|e| path.ends_with(e));
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let Some(start) = comment_start(l, hash_comments) else {
                return false;
            };
            let comment = &l[start..];
            TODO.find_iter(comment)
                .any(|m| comment[..m.start()].matches('`').count() % 2 == 0)
                && !ISSUE_REF.is_match(l)
        })
        .map(|(i, l)| Finding::new(path, i + 1, l))
        .collect()
}

/// Where a line's comment starts (`//`, or `#` in hash-comment languages), outside string literals.
fn comment_start(line: &str, hash_comments: bool) -> Option<usize> {
    let marker = if hash_comments { "#" } else { "//" };
    line.match_indices(marker)
        .map(|(i, _)| i)
        .find(|i| !in_string(line, *i))
}

/// Unseeded randomness in Rust test code.
pub(crate) fn unseeded_randomness(path: &str, text: &str) -> Vec<Finding> {
    code_matches(test_lines(path, text), &UNSEEDED, path)
}

/// A metric name literal found in code.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct MetricName {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) name: String,
}

/// Metric names in non-test code: first arguments of metric macros and constructors, and every
/// `"arqonbus.…"` literal.
pub(crate) fn metric_names(path: &str, text: &str) -> Vec<MetricName> {
    let mut names = Vec::new();
    for (n, line) in code_lines(path, text).filter(|(_, l)| !is_comment(l)) {
        let found = METRIC_CALL
            .captures_iter(line)
            .chain(ARQONBUS_LITERAL.captures_iter(line))
            .filter_map(|c| c.get(1).map(|m| m.as_str().to_owned()));
        for name in found {
            if !names
                .iter()
                .any(|m: &MetricName| m.line == n && m.name == name)
            {
                names.push(MetricName {
                    path: path.to_owned(),
                    line: n,
                    name,
                });
            }
        }
    }
    names
}

pub(crate) fn is_good_metric_name(name: &str) -> bool {
    METRIC_NAME.is_match(name)
}

/// A log or span macro that records a sensitive variable.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct LogLeak {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) var: String,
}

/// Tracing macros in non-test code whose arguments name a token, payload or secret, either as an
/// expression or field (`token = %t`, `?payload`) or as an inline capture (`"{token}"`).
/// `x.len()` is allowed: a length is not the value.
pub(crate) fn log_leaks(path: &str, text: &str) -> Vec<LogLeak> {
    let code = code_text(path, text);
    let mut leaks = Vec::new();
    for m in LOG_MACRO.find_iter(code) {
        let line = code[..m.start()].matches('\n').count() + 1;
        if is_comment(code[..m.start()].rsplit('\n').next().unwrap_or_default()) {
            continue;
        }
        let (outside, strings) = split_invocation(&code[m.end()..]);
        let idents = SENSITIVE_IDENT
            .find_iter(&outside)
            .filter(|v| !outside[v.end()..].starts_with(".len()"))
            .map(|v| v.as_str().to_owned());
        let captures = SENSITIVE_CAPTURE
            .captures_iter(&strings)
            .filter_map(|c| c.get(1))
            .map(|v| v.as_str().to_owned());
        for var in idents.chain(captures) {
            if !leaks
                .iter()
                .any(|l: &LogLeak| l.line == line && l.var == var)
            {
                leaks.push(LogLeak {
                    path: path.to_owned(),
                    line,
                    var,
                });
            }
        }
    }
    leaks
}

/// Splits a macro invocation (text after its opening parenthesis) into the code outside string
/// literals and the contents of the string literals, up to the matching closing parenthesis.
fn split_invocation(rest: &str) -> (String, String) {
    let (mut outside, mut strings) = (String::new(), String::new());
    let (mut depth, mut in_str, mut escaped) = (1usize, false, false);
    for c in rest.chars() {
        if in_str {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => {
                    in_str = false;
                    strings.push(' ');
                }
                _ => {
                    escaped = false;
                    strings.push(c);
                }
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            _ => {}
        }
        outside.push(c);
    }
    (outside, strings)
}

/// Span names (and `#[instrument]` sites) in non-test code.
pub(crate) fn spans(path: &str, text: &str) -> Vec<String> {
    code_lines(path, text)
        .filter(|(_, l)| !is_comment(l))
        .flat_map(|(n, l)| {
            SPAN.captures_iter(l)
                .map(|c| {
                    c.get(1).or_else(|| c.get(2)).map_or_else(
                        || format!("instrument@{path}:{n}"),
                        |m| m.as_str().to_owned(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// A secret candidate; the excerpt keeps only the first four characters.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub(crate) struct Secret {
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) kind: &'static str,
    pub(crate) excerpt: String,
}

/// A key block's body: the next line, or the rest of the line after an escaped `\n`, is base64.
fn has_key_body(rest_of_line: &str, next_line: Option<&str>) -> bool {
    let body = |s: &str| {
        s.trim()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='))
            .count()
            >= 32
    };
    rest_of_line.split("\\n").nth(1).is_some_and(body) || next_line.is_some_and(body)
}

/// Secret candidates in one line of a file; `next_line` lets a private-key header count only when a
/// key body follows it (a test asserting on the header text is not a key).
pub(crate) fn secrets_in_line(
    path: &str,
    line_no: usize,
    line: &str,
    next_line: Option<&str>,
) -> Vec<Secret> {
    let is_config = path
        .rsplit_once('.')
        .is_some_and(|(_, ext)| CONFIG_EXTS.contains(&ext.to_ascii_lowercase().as_str()))
        || path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.starts_with(".env"));
    SECRETS
        .iter()
        .filter(|(kind, _)| *kind != "password-in-config" || is_config)
        .filter_map(|(kind, pattern)| {
            let m = pattern.captures(line)?;
            let value = m.get(1).unwrap_or_else(|| {
                m.get(0)
                    .unwrap_or_else(|| unreachable!("group 0 always matches"))
            });
            if *kind == "password-in-config" && is_placeholder(value.as_str()) {
                return None;
            }
            if *kind == "private-key" && !has_key_body(&line[value.end()..], next_line) {
                return None;
            }
            let excerpt = value
                .as_str()
                .trim_start_matches(|c: char| !c.is_alphanumeric())
                .chars()
                .take(4)
                .collect();
            Some(Secret {
                path: path.to_owned(),
                line: line_no,
                kind,
                excerpt,
            })
        })
        .collect()
}

/// Values that point at a secret instead of being one: `${VAR}`, `<fill me>`, `env:…`, `file:…`.
fn is_placeholder(value: &str) -> bool {
    value.starts_with('$')
        || value.starts_with('<')
        || value.starts_with("env:")
        || value.starts_with("file:")
}

/// Secret candidates in a whole file.
pub(crate) fn secrets(path: &str, text: &str) -> Vec<Secret> {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .flat_map(|(i, l)| secrets_in_line(path, i + 1, l, lines.get(i + 1).copied()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_every_built_in_pattern_compiles() {
        for pattern in [
            &FORBIDDEN_CALL,
            &TODO,
            &ISSUE_REF,
            &UNSEEDED,
            &METRIC_CALL,
            &ARQONBUS_LITERAL,
            &METRIC_NAME,
            &LOG_MACRO,
            &SENSITIVE_IDENT,
            &SENSITIVE_CAPTURE,
            &SPAN,
        ] {
            let _ = pattern.as_str();
        }
        assert_eq!(SECRETS.len(), 4);
    }

    // AC-ACES-4
    #[test]
    fn unwrap_is_found_in_library_code_but_not_in_tests_comments_or_strings() {
        let text = "//! x\nfn f() { a.unwrap(); }\n// b.unwrap()\nconst S: &str = \".unwrap()\";\nfn g() { c.expect(\"m\"); }\n#[cfg(test)]\nmod tests { fn t() { d.unwrap(); } }\n";
        let found = forbidden_calls("crates/a/src/lib.rs", text);
        assert_eq!(found.iter().map(|f| f.line).collect::<Vec<_>>(), vec![2, 5]);
        assert!(forbidden_calls("crates/a/tests/it/main.rs", text).is_empty());
        assert!(forbidden_calls("crates/a/build.rs", text).is_empty());
        assert!(
            forbidden_calls(
                "crates/a/src/lib.rs",
                "fn f() { a.unwrap_or(1); b.expect_err(); }"
            )
            .is_empty()
        );
        let own_method = "client.expect(\"welcome\", |b| match b {";
        assert!(forbidden_calls("crates/a/src/lib.rs", own_method).is_empty());
        let one_argument = "x.expect(&format!(\"a {}, b\", y));";
        assert_eq!(
            forbidden_calls("crates/a/src/lib.rs", one_argument).len(),
            1
        );
        assert_eq!(
            forbidden_calls("crates/a/src/tests.rs", "a.unwrap();").len(),
            0
        );
    }

    // AC-ACES-4
    #[test]
    fn todo_needs_an_issue_reference() {
        let text = "// TODO: later\n// TODO(#12): tracked\n// FIXME #3 soon\nlet s = \"TODO\";\nstatic TODO: u8 = 0;\n/// the `TODO` rule\nx(); // FIXME now\n";
        let found = todos_without_issue("a.rs", text);
        assert_eq!(
            found,
            vec![
                Finding::new("a.rs", 1, "// TODO: later"),
                Finding::new("a.rs", 7, "x(); // FIXME now")
            ]
        );
        assert_eq!(
            todos_without_issue("ci/a.sh", "x=1 # TODO later\n# TODO #4\n").len(),
            1
        );
    }

    #[test]
    fn unseeded_randomness_only_counts_in_test_code() {
        let text = "fn f() { rand::thread_rng(); }\n#[cfg(test)]\nmod t { fn g() { let r = rand::thread_rng(); let s = StdRng::seed_from_u64(7); } }\n";
        let found = unseeded_randomness("crates/a/src/lib.rs", text);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].line, 3);
    }

    // AC-ACES-8
    #[test]
    fn metric_names_follow_the_rule() {
        let text = "fn f() { counter!(\"arqonbus.shield.connects_total\"); meter.u64_counter(\"shield_msgs\"); let n = \"arqonbus.brain\"; }\n";
        let names: Vec<(String, bool)> = metric_names("crates/s/src/m.rs", text)
            .into_iter()
            .map(|m| (m.name.clone(), is_good_metric_name(&m.name)))
            .collect();
        assert_eq!(
            names,
            vec![
                ("arqonbus.shield.connects_total".to_owned(), true),
                ("shield_msgs".to_owned(), false),
                ("arqonbus.brain".to_owned(), false),
            ]
        );
    }

    // AC-ACES-8
    #[test]
    fn log_macros_must_not_record_tokens_or_payloads() {
        let text = "fn f() {\n    info!(tenant = %t, \"joined {room}\");\n    warn!(len = payload.len(), \"too big\");\n    debug!(\n        token = %raw,\n        \"refresh\"\n    );\n    error!(\"bad {payload:?} for invalid token\");\n    let payload = 1;\n}\n";
        let leaks = log_leaks("crates/s/src/a.rs", text);
        let found: Vec<(usize, &str)> = leaks.iter().map(|l| (l.line, l.var.as_str())).collect();
        assert_eq!(found, vec![(4, "token"), (8, "payload")]);
    }

    #[test]
    fn spans_are_collected() {
        let text = "fn f() { let s = info_span!(\"publish\", room = %r); }\n#[tracing::instrument(skip(self))]\nfn g() {}\n";
        assert_eq!(
            spans("crates/s/src/a.rs", text),
            vec![
                "publish".to_owned(),
                "instrument@crates/s/src/a.rs:2".to_owned()
            ]
        );
    }

    // AC-ACES-6
    #[test]
    fn secrets_are_found_and_redacted() {
        let key = format!(
            "-----BEGIN RSA {}-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
            "PRIVATE KEY"
        );
        let aws = format!("id = {}{}", "AKIA", "ABCDEFGHIJKLMNOP");
        let jwt = format!(
            "{}.{}.{}",
            "eyJhbGciOiJSUzI1NiJ9", "eyJzdWIiOiJ1MSJ9", "c2lnbmF0dXJlLXBhcnQ"
        );
        let text = format!("{key}\n{aws}\nlet t = \"{jwt}\";\n");
        let found = secrets("crates/a/src/k.rs", &text);
        let kinds: Vec<(&str, usize, &str)> = found
            .iter()
            .map(|s| (s.kind, s.line, s.excerpt.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("private-key", 1, "BEGI"),
                ("aws-access-key", 3, "AKIA"),
                ("jwt", 4, "eyJh")
            ]
        );
        let header_only = format!(
            "assert!(pem.starts_with(\"-----BEGIN {}-----\"));",
            "PRIVATE KEY"
        );
        assert!(secrets("crates/a/tests/it/k.rs", &header_only).is_empty());
        let escaped = format!(
            "const K: &str = \"-----BEGIN {}-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEA\";",
            "PRIVATE KEY"
        );
        assert_eq!(secrets("crates/a/src/k.rs", &escaped).len(), 1);
    }

    // AC-ACES-6
    #[test]
    fn passwords_count_in_config_files_only_and_placeholders_pass() {
        assert_eq!(
            secrets("deploy/a.toml", "password = \"hunter22\"\n")[0].excerpt,
            "hunt"
        );
        assert_eq!(
            secrets("deploy/compose.yml", "  - GF_ADMIN_PASSWORD=admin\n").len(),
            1
        );
        assert!(
            secrets(
                "deploy/a.toml",
                "password = \"${DB_PASSWORD}\"\nbypass: true\n"
            )
            .is_empty()
        );
        assert!(secrets("crates/a/src/lib.rs", "let password = compute();\n").is_empty());
    }
}

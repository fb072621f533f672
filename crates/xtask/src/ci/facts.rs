//! Facts: the JSON each stage writes, the run context, and running external tools or reading their results.

use std::cell::{OnceCell, RefCell};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::{Map, Value, json};

/// How many trailing lines of a tool's output the facts keep.
const TAIL_LINES: usize = 20;
/// How many lines of a tool's output make the one-line summary policies quote.
const SUMMARY_LINES: usize = 3;

/// Everything a stage needs to know about this run.
pub(crate) struct Ctx {
    pub(crate) root: PathBuf,
    pub(crate) full: bool,
    pub(crate) base: Option<String>,
    pub(crate) pr: Option<PathBuf>,
    results: PathBuf,
    /// Tool checks already run in this invocation (compat reuses schema's buf run).
    memo: RefCell<BTreeMap<String, Value>>,
    files: OnceCell<Vec<String>>,
}

impl Ctx {
    pub(crate) fn new(
        root: PathBuf,
        full: bool,
        base: Option<String>,
        pr: Option<PathBuf>,
        results: Option<PathBuf>,
    ) -> Self {
        let results = results.unwrap_or_else(|| root.join("target").join("aces").join("results"));
        Self {
            root,
            full,
            base,
            pr,
            results,
            memo: RefCell::new(BTreeMap::new()),
            files: OnceCell::new(),
        }
    }

    /// Every file of the tree (relative, `/`-separated): git's view (tracked and untracked, not
    /// ignored) in a git checkout, otherwise a walk that skips build output.
    pub(crate) fn files(&self) -> &[String] {
        self.files.get_or_init(|| list_files(&self.root))
    }

    /// The files under `dir` whose names end with one of `exts` (any file when `exts` is empty).
    pub(crate) fn files_under(&self, dir: &str, exts: &[&str]) -> Vec<&str> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        self.files()
            .iter()
            .filter(|f| f.starts_with(&prefix))
            .filter(|f| exts.is_empty() || exts.iter().any(|e| f.ends_with(&format!(".{e}"))))
            .map(String::as_str)
            .collect()
    }

    /// Rust sources of the workspace's libraries and binaries: `crates/*/src` and `model/src`.
    pub(crate) fn rust_sources(&self) -> Vec<&str> {
        self.files_under("crates", &["rs"])
            .into_iter()
            .filter(|p| p.split('/').nth(2) == Some("src"))
            .chain(self.files_under("model/src", &["rs"]))
            .collect()
    }

    /// A text file of the tree; `None` when it is missing, binary or over 1 MiB.
    pub(crate) fn read(&self, rel: &str) -> Option<String> {
        let path = self.root.join(rel);
        let size = std::fs::metadata(&path).ok()?.len();
        if size > MAX_TEXT_BYTES {
            return None;
        }
        String::from_utf8(std::fs::read(path).ok()?).ok()
    }
}

/// Larger files are not scanned (generated data, binaries).
const MAX_TEXT_BYTES: u64 = 1 << 20;

/// Directories a filesystem walk never enters.
const SKIP_DIRS: [&str; 7] = [
    "target",
    ".git",
    "node_modules",
    ".venv",
    "__pycache__",
    "corpus",
    "artifacts",
];

fn list_files(root: &Path) -> Vec<String> {
    if root.join(".git").exists() {
        let output = Command::new("git")
            .arg("-C")
            .arg(root)
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output();
        if let Some(output) = output.ok().filter(|o| o.status.success()) {
            let mut files: Vec<String> = output
                .stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .filter(|p| root.join(p).is_file())
                .collect();
            files.sort();
            files.dedup();
            return files;
        }
    }
    let mut files = Vec::new();
    walk(root, root, &mut files);
    files.sort();
    files
}

fn walk(root: &Path, dir: &Path, files: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !SKIP_DIRS.contains(&name.to_string_lossy().as_ref()) {
                walk(root, &path, files);
            }
        } else if kind.is_file() {
            files.push(relative(root, &path).replace('\\', "/"));
        }
    }
}

/// The facts of one stage: `{"stage", "full", "checks": {…}}`.
pub(crate) struct Facts {
    stage: String,
    full: bool,
    checks: Map<String, Value>,
}

impl Facts {
    pub(crate) fn new(ctx: &Ctx, stage: &str) -> Self {
        Self {
            stage: stage.to_owned(),
            full: ctx.full,
            checks: Map::new(),
        }
    }

    pub(crate) fn add(&mut self, name: &str, check: Value) {
        self.checks.insert(name.to_owned(), check);
    }

    pub(crate) fn into_json(self) -> Value {
        json!({"stage": self.stage, "full": self.full, "checks": Value::Object(self.checks)})
    }
}

/// A check that ran, with its findings merged in.
pub(crate) fn ran(findings: Value) -> Value {
    let mut check = match findings {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    check.insert("ran".to_owned(), Value::Bool(true));
    Value::Object(check)
}

/// A check that did not run, and why.
pub(crate) fn skipped(reason: &str) -> Value {
    json!({"ran": false, "skipped": {"reason": reason}})
}

/// A check that could not be carried out at all: policies deny it in every tier.
pub(crate) fn error(reason: &str) -> Value {
    json!({"ran": false, "error": reason})
}

/// Reads extra figures out of a tool's output.
pub(crate) type Figures = Box<dyn Fn(&str) -> Map<String, Value>>;

/// What an external tool needs before it can run here.
pub(crate) enum Needs {
    /// An executable on `PATH`.
    Binary(&'static str),
    /// A file relative to the root (a script another part of the repo provides).
    File(&'static str),
    /// Only a result file can provide this check.
    ResultOnly(&'static str),
}

/// An external check: a result file `<results>/<name>.json` wins; otherwise the command runs when the
/// tier allows it and what it needs is here; otherwise the check is `skipped` with the reason.
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) program: String,
    pub(crate) args: Vec<String>,
    pub(crate) needs: Needs,
    /// Run only with `--full` (slow), unless a result file is given.
    pub(crate) full_only: bool,
    /// Output meaning the tool is not there yet (e.g. an unimplemented `xtask` subcommand).
    pub(crate) absent_marker: Option<&'static str>,
    /// Extra figures parsed from the tool's output.
    pub(crate) figures: Figures,
}

impl Tool {
    pub(crate) fn new(name: &'static str, program: &str, args: &[&str], needs: Needs) -> Self {
        Self {
            name,
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            needs,
            full_only: false,
            absent_marker: None,
            figures: Box::new(|_| Map::new()),
        }
    }

    pub(crate) fn full_only(mut self) -> Self {
        self.full_only = true;
        self
    }

    /// An `xtask` subcommand of this very binary; absent while clap does not know it.
    pub(crate) fn xtask(name: &'static str, args: &[&str]) -> Self {
        let program = std::env::current_exe()
            .map_or_else(|_| "xtask".to_owned(), |p| p.display().to_string());
        let mut tool = Self::new(name, &program, args, Needs::Binary("cargo"));
        tool.absent_marker = Some("unrecognized subcommand");
        tool
    }
}

/// Runs (or reads, or skips) a tool check, once per invocation.
pub(crate) fn tool_check(ctx: &Ctx, tool: &Tool) -> Value {
    if let Some(done) = ctx.memo.borrow().get(tool.name) {
        return done.clone();
    }
    let check = tool_check_uncached(ctx, tool);
    ctx.memo
        .borrow_mut()
        .insert(tool.name.to_owned(), check.clone());
    check
}

fn tool_check_uncached(ctx: &Ctx, tool: &Tool) -> Value {
    let result_file = ctx.results.join(format!("{}.json", tool.name));
    if result_file.is_file() {
        return read_result(&result_file);
    }
    let hint = format!("or provide {}", relative(&ctx.root, &result_file));
    let program = match &tool.needs {
        Needs::ResultOnly(producer) => {
            return skipped(&format!(
                "no result file; {producer} writes {}",
                relative(&ctx.root, &result_file)
            ));
        }
        Needs::Binary(bin) => {
            if find_on_path(bin).is_none() {
                return skipped(&format!("{bin} not installed ({hint})"));
            }
            tool.program.clone()
        }
        Needs::File(rel) => {
            if !ctx.root.join(rel).is_file() {
                return skipped(&format!("{rel} not present ({hint})"));
            }
            tool.program.clone()
        }
    };
    if tool.full_only && !ctx.full {
        return skipped(&format!("slow: runs in --full ({hint})"));
    }
    run_command(ctx, tool, &program)
}

fn run_command(ctx: &Ctx, tool: &Tool, program: &str) -> Value {
    let started = Instant::now();
    let mut command = Command::new(program);
    command
        .args(&tool.args)
        .current_dir(&ctx.root)
        .env("CARGO_TERM_COLOR", "never")
        .env("RUST_BACKTRACE", "0")
        .env("NO_COLOR", "1");
    if let Some(base) = &ctx.base {
        command.env("ACES_BASE", base);
    }
    let output = match command.output() {
        Ok(output) => output,
        Err(e) => return error(&format!("cannot start {program}: {e}")),
    };
    let text = strip_ansi(&format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    ));
    if let Some(marker) = tool.absent_marker
        && !output.status.success()
        && text.contains(marker)
    {
        return skipped(&format!("`{}` is not implemented yet", tool.args.join(" ")));
    }
    let mut check = (tool.figures)(&text);
    check.insert("ok".to_owned(), Value::Bool(output.status.success()));
    check.insert(
        "exit_code".to_owned(),
        json!(output.status.code().unwrap_or(-1)),
    );
    check.insert("summary".to_owned(), Value::String(summary(&text)));
    check.insert(
        "output_tail".to_owned(),
        Value::String(tail(&text, TAIL_LINES)),
    );
    check.insert(
        "command".to_owned(),
        Value::String(format!("{} {}", tool_label(program), tool.args.join(" "))),
    );
    check.insert(
        "duration_ms".to_owned(),
        json!(started.elapsed().as_millis()),
    );
    ran(Value::Object(check))
}

/// A result file: `{"ok": bool, "summary": "…", …figures}` written by whoever ran the tool.
fn read_result(path: &Path) -> Value {
    let parsed = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
    match parsed {
        Ok(Value::Object(mut map)) if map.get("ok").is_some_and(Value::is_boolean) => {
            map.insert(
                "source".to_owned(),
                Value::String(path.display().to_string()),
            );
            ran(Value::Object(map))
        }
        Ok(_) => error(&format!(
            "{} is not an object with a boolean `ok`",
            path.display()
        )),
        Err(e) => error(&format!("cannot read {}: {e}", path.display())),
    }
}

fn tool_label(program: &str) -> &str {
    Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(program)
}

/// The last `n` non-empty lines of a tool's output.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// One line for a policy message: the lines that mention an error (or else the first lines),
/// at most [`SUMMARY_LINES`] of them, joined with ` | `.
pub(crate) fn summary(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    let errors: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.contains("error") || l.contains("Error") || l.contains("FAIL"))
        .collect();
    let chosen = if errors.is_empty() { &lines } else { &errors };
    let mut out = chosen
        .iter()
        .take(SUMMARY_LINES)
        .copied()
        .collect::<Vec<_>>()
        .join(" | ");
    if chosen.len() > SUMMARY_LINES {
        let _ = write!(out, " | … ({} more)", chosen.len() - SUMMARY_LINES);
    }
    out
}

/// Removes terminal colour sequences (`ESC [ … letter`, `ESC ( B`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for n in chars.by_ref() {
                    if n.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            Some('(') => {
                chars.next();
            }
            _ => {}
        }
    }
    out
}

pub(crate) fn find_on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(bin))
        .find(|p| p.is_file())
}

/// `path` relative to `root` when it is inside it, for messages.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_non_empty_lines() {
        assert_eq!(tail("a\n\nb\nc\n\n", 2), "b\nc");
        assert_eq!(tail("a", 5), "a");
    }

    #[test]
    fn summary_prefers_error_lines_and_strips_colour() {
        assert_eq!(
            summary("Checking a\nerror: x\nwarning: y\nerror: z\n"),
            "error: x | error: z"
        );
        assert_eq!(summary("a\nb\nc\nd\ne\n"), "a | b | c | … (2 more)");
        assert_eq!(strip_ansi("\u{1b}(B\u{1b}[m\u{1b}[32m+ x\u{1b}[0m"), "+ x");
    }

    #[test]
    fn ran_and_skipped_have_the_shape_policies_read() {
        // AC-ACES-10
        assert_eq!(ran(json!({"n": 1})), json!({"n": 1, "ran": true}));
        assert_eq!(
            skipped("x"),
            json!({"ran": false, "skipped": {"reason": "x"}})
        );
        assert_eq!(error("y"), json!({"ran": false, "error": "y"}));
    }
}

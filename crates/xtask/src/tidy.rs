//! `cargo xtask tidy`: the shape of the code (like rust-analyzer's `tidy.rs`). Fails on a module
//! import cycle inside a crate, a module without a `//!` line, a source file over the size limit
//! without an allowlist entry, and `unwrap()`/`expect(` outside tests.
//!
//! The module graph of a crate is read from its sources: a file `src/a/b.rs` (or `src/a/b/mod.rs`)
//! is module `a::b`; a path `crate::a::…`, `super::…`, `self::…` or `child::…` in a file's non-test
//! code is an edge to the deepest module it names. A name the crate root re-exports
//! (`pub use a::Thing;`) counts as module `a`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::ci::scan;

/// Lines a source file under `src/` may have before it needs an entry in [`SIZE_ALLOWLIST`].
pub(crate) const MAX_LINES: usize = 1000;

/// Files allowed over [`MAX_LINES`], each with its reason.
const SIZE_ALLOWLIST: [(&str, &str); 4] = [
    (
        "crates/arqon-core/src/session/tests.rs",
        "the Session machine's unit tests, at least one per table row, in table order",
    ),
    (
        "crates/arqon-core/src/presence.rs",
        "one machine: its state, events and transition table read best together",
    ),
    (
        "crates/arqon-core/src/rollout.rs",
        "one machine: its state, events and transition table read best together",
    ),
    (
        "crates/arq/src/cmd_dev.rs",
        "one command: the local stack's process supervision",
    ),
];

/// Options of `cargo xtask tidy`.
#[derive(clap::Args, Debug)]
pub(crate) struct TidyArgs {
    /// The tree to check (default: the repository this xtask was built from).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Print the module graph of this crate (`crates/arqon-shield`) instead: one line per module
    /// with the modules it imports, roots first.
    #[arg(long, value_name = "CRATE_DIR")]
    graph: Option<String>,
}

/// One problem tidy found.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Problem {
    pub(crate) path: String,
    pub(crate) what: String,
}

/// Runs every check over the tree; prints each problem and returns whether there were none.
pub(crate) fn run(args: &TidyArgs) -> anyhow::Result<bool> {
    let root = args.root.clone().unwrap_or_else(crate::generate::repo_root);
    let sources = read_sources(&root)?;
    if let Some(krate) = &args.graph {
        let files: Vec<(&str, &str)> = sources
            .iter()
            .filter(|(p, _)| crate_dir(p) == krate)
            .map(|(p, t)| (p.as_str(), t.as_str()))
            .collect();
        for (module, imports) in module_graph(&files) {
            let imports: Vec<String> = imports.iter().map(|m| display(m)).collect();
            println!("{} -> {}", display(&module), imports.join(", "));
        }
        return Ok(true);
    }
    let problems = check(&sources);
    for problem in &problems {
        println!("{}: {}", problem.path, problem.what);
    }
    let crates: BTreeSet<&str> = sources.iter().map(|(p, _)| crate_dir(p)).collect();
    println!(
        "tidy: {} files in {} crates, {} problems",
        sources.len(),
        crates.len(),
        problems.len()
    );
    Ok(problems.is_empty())
}

/// Every `.rs` file under `crates/*/src` and `model/src`, as (relative path, text).
fn read_sources(root: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let mut dirs: Vec<PathBuf> = vec![root.join("model/src")];
    let crates = root.join("crates");
    for entry in
        std::fs::read_dir(&crates).with_context(|| format!("reading {}", crates.display()))?
    {
        dirs.push(entry?.path().join("src"));
    }
    for dir in dirs.into_iter().filter(|d| d.is_dir()) {
        walk(&dir, &mut files)?;
    }
    let mut sources = Vec::new();
    for path in files {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let rel = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        sources.push((rel, text));
    }
    sources.sort();
    Ok(sources)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    Ok(())
}

/// Every problem in `sources` (relative path, text), sorted.
pub(crate) fn check(sources: &[(String, String)]) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (path, text) in sources {
        if !text.trim_start().starts_with("//!") {
            problems.push(problem(path, "the module does not open with a `//!` line"));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES && !SIZE_ALLOWLIST.iter().any(|(p, _)| p == path) {
            problems.push(problem(
                path,
                &format!("{lines} lines, over the limit of {MAX_LINES} (split it by concern, or allowlist it with a reason)"),
            ));
        }
        for finding in scan::forbidden_calls(path, text) {
            problems.push(problem(
                path,
                &format!(
                    "line {}: unwrap()/expect( outside tests: {}",
                    finding.line, finding.text
                ),
            ));
        }
    }
    let mut by_crate: BTreeMap<&str, Vec<(&str, &str)>> = BTreeMap::new();
    for (path, text) in sources {
        by_crate
            .entry(crate_dir(path))
            .or_default()
            .push((path.as_str(), text.as_str()));
    }
    for (krate, files) in by_crate {
        for cycle in cycles(&module_graph(&files)) {
            problems.push(problem(
                krate,
                &format!("module import cycle: {}", cycle.join(" -> ")),
            ));
        }
    }
    problems.sort();
    problems
}

fn problem(path: &str, what: &str) -> Problem {
    Problem {
        path: path.to_owned(),
        what: what.to_owned(),
    }
}

/// `crates/<name>` or `model`: the crate a source path belongs to.
fn crate_dir(path: &str) -> &str {
    match path.find("/src/") {
        Some(i) => &path[..i],
        None => path,
    }
}

/// The module a file is: `crates/x/src/a/b.rs` and `crates/x/src/a/b/mod.rs` are `a::b`; `lib.rs`
/// and `main.rs` are the crate root, `""`.
pub(crate) fn module_of(path: &str) -> String {
    let inner = path.find("/src/").map_or(path, |i| &path[i + 5..]);
    let inner = inner.trim_end_matches(".rs");
    let inner = inner.strip_suffix("/mod").unwrap_or(inner);
    if matches!(inner, "lib" | "main") {
        return String::new();
    }
    inner.replace('/', "::")
}

/// Edges between the modules of one crate: module → the modules its non-test code names.
pub(crate) fn module_graph(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
    let mut modules: BTreeSet<String> = files.iter().map(|(p, _)| module_of(p)).collect();
    // Inline modules (`pub mod v1 { include!(…) }`): their code counts as their file's.
    for (path, text) in files {
        let parent = module_of(path);
        for name in inline_modules(scan::code_text(path, text)) {
            modules.insert(if parent.is_empty() {
                name
            } else {
                format!("{parent}::{name}")
            });
        }
    }
    let reexports: BTreeMap<String, String> = files
        .iter()
        .filter(|(p, _)| module_of(p).is_empty())
        .flat_map(|(_, text)| reexported_names(text))
        .collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files {
        let from = module_of(path);
        let code = strip_comments(scan::code_text(path, text));
        let targets = graph.entry(from.clone()).or_default();
        for reference in references(&code) {
            let target = resolve(&from, &reference, &modules, &reexports);
            if let Some(target) = target.filter(|t| *t != from) {
                targets.insert(target);
            }
        }
    }
    graph
}

/// Names of the modules declared inline in `code` (`mod name {`, with any visibility).
fn inline_modules(code: &str) -> Vec<String> {
    code.lines()
        .filter_map(|line| {
            let line = line.trim_start();
            let rest = line
                .strip_prefix("pub(crate) mod ")
                .or_else(|| line.strip_prefix("pub mod "))
                .or_else(|| line.strip_prefix("mod "))?;
            let (name, tail) =
                rest.split_once(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))?;
            (tail.trim_start().starts_with('{') || rest[name.len()..].trim_start().starts_with('{'))
                .then(|| name.to_owned())
        })
        .collect()
}

/// `pub use a::{X, Y};` and `pub use a::X;` in a crate root: the names and the module they come from.
fn reexported_names(text: &str) -> Vec<(String, String)> {
    let mut names = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let rest = rest.trim_end_matches(';').trim_start_matches("self::");
        let Some((module, items)) = rest.split_once("::") else {
            continue;
        };
        let items = items.trim_start_matches('{').trim_end_matches('}');
        for item in items.split(',') {
            let name = item.split_whitespace().last().unwrap_or("").trim();
            if !name.is_empty() && !name.contains("::") {
                names.push((name.to_owned(), module.to_owned()));
            }
        }
    }
    names
}

/// Removes `//` comments and the contents of string literals, keeping line structure.
fn strip_comments(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    for line in code.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = ' ';
        for c in line.chars() {
            if in_string {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            if c == '/' && previous == '/' {
                out.pop();
                break;
            }
            if c == '"' && previous != '\'' {
                in_string = true;
            } else {
                out.push(c);
            }
            previous = c;
        }
        out.push('\n');
    }
    out
}

/// Every path that starts with `crate::`, `super::`, `self::` or a lower-case identifier followed
/// by `::`, with `{…}` groups expanded: `crate::{a::X, b}` gives `crate::a::X` and `crate::b`.
pub(crate) fn references(code: &str) -> Vec<Vec<String>> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let starts_word = i == 0 || !is_ident(chars[i - 1]) && chars[i - 1] != ':';
        if starts_word && (chars[i].is_ascii_lowercase() || chars[i] == '_') {
            let (path, end) = parse_path(&chars, i);
            if path.len() > 1 {
                out.extend(expand(&path));
            }
            i = end.max(i + 1);
        } else {
            i += 1;
        }
    }
    out.into_iter().filter(|p| p.len() > 1).collect()
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// A parsed path: its segments, where a segment `{…}` holds the raw group text.
fn parse_path(chars: &[char], start: usize) -> (Vec<String>, usize) {
    let mut segments = Vec::new();
    let mut i = start;
    loop {
        if chars.get(i) == Some(&'{') {
            let mut depth = 0;
            let begin = i;
            while i < chars.len() {
                match chars[i] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            segments.push(chars[begin..i].iter().collect());
            return (segments, i);
        }
        let begin = i;
        while i < chars.len() && is_ident(chars[i]) {
            i += 1;
        }
        if i == begin {
            return (segments, i);
        }
        segments.push(chars[begin..i].iter().collect());
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return (segments, i);
        }
    }
}

/// Expands a trailing `{…}` group into one path per item.
fn expand(path: &[String]) -> Vec<Vec<String>> {
    let Some(last) = path.last() else {
        return Vec::new();
    };
    if !last.starts_with('{') {
        return vec![path.to_vec()];
    }
    let prefix = &path[..path.len() - 1];
    let inner: Vec<char> = last[1..last.len().saturating_sub(1)].chars().collect();
    let mut items = Vec::new();
    let (mut depth, mut begin) = (0, 0);
    for (i, c) in inner.iter().enumerate() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(inner[begin..i].iter().collect::<String>());
                begin = i + 1;
            }
            _ => {}
        }
    }
    items.push(inner[begin..].iter().collect());
    let mut out = Vec::new();
    for item in items {
        let item: Vec<char> = item.trim().chars().collect();
        if item.is_empty() {
            continue;
        }
        let (tail, _) = parse_path(&item, 0);
        for expanded in expand(&tail) {
            let mut full = prefix.to_vec();
            full.extend(expanded);
            out.push(full);
        }
    }
    out
}

/// The deepest module of the crate that `reference` (as written in module `from`) names, or
/// `None` when it names no module of this crate (`std::…`, an external crate, a local variable).
fn resolve(
    from: &str,
    reference: &[String],
    modules: &BTreeSet<String>,
    reexports: &BTreeMap<String, String>,
) -> Option<String> {
    let mut current: Vec<String> = if from.is_empty() {
        Vec::new()
    } else {
        from.split("::").map(str::to_owned).collect()
    };
    let mut rest = reference;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            current.clear();
            rest = &rest[1..];
        }
        Some("self") => rest = &rest[1..],
        Some("super") => {
            while rest.first().map(String::as_str) == Some("super") {
                current.pop()?;
                rest = &rest[1..];
            }
        }
        // A bare path resolves only to a child module of `from` (2018 paths).
        Some(first) if !modules.contains(&join(&current, first)) => return None,
        _ => {}
    }
    let mut found = current.join("::");
    for segment in rest {
        let candidate = join(&current, segment);
        if modules.contains(&candidate) {
            current.push(segment.clone());
            found = candidate;
        } else {
            if current.is_empty()
                && let Some(module) = reexports.get(segment)
            {
                return Some(module.clone());
            }
            break;
        }
    }
    Some(found)
}

fn join(current: &[String], segment: &str) -> String {
    if current.is_empty() {
        segment.to_owned()
    } else {
        format!("{}::{segment}", current.join("::"))
    }
}

/// Every strongly connected component with more than one module (Tarjan), each as a closed path of
/// module names (the root shows as `crate`), sorted.
pub(crate) fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct Tarjan<'a> {
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<String>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, node: &'a str) {
            let n = self.index.len();
            self.index.insert(node, n);
            self.low.insert(node, n);
            self.stack.push(node);
            self.on_stack.insert(node);
            let graph = self.graph;
            for next in graph.get(node).into_iter().flatten() {
                let next = next.as_str();
                if !self.index.contains_key(next) {
                    self.visit(next);
                    let low = self.low[node].min(self.low[next]);
                    self.low.insert(node, low);
                } else if self.on_stack.contains(next) {
                    let low = self.low[node].min(self.index[next]);
                    self.low.insert(node, low);
                }
            }
            if self.low[node] == self.index[node] {
                let mut component = Vec::new();
                while let Some(member) = self.stack.pop() {
                    self.on_stack.remove(member);
                    component.push(display(member));
                    if member == node {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    let first = component[0].clone();
                    component.push(first);
                    self.components.push(component);
                }
            }
        }
    }
    let mut tarjan = Tarjan {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for node in graph.keys() {
        if !tarjan.index.contains_key(node.as_str()) {
            tarjan.visit(node);
        }
    }
    tarjan.components.sort();
    tarjan.components
}

fn display(module: &str) -> String {
    if module.is_empty() {
        "crate".to_owned()
    } else {
        module.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(files: &[(&str, &str)]) -> BTreeMap<String, BTreeSet<String>> {
        module_graph(files)
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn modules_are_named_by_their_path() {
        assert_eq!(module_of("crates/a/src/lib.rs"), "");
        assert_eq!(module_of("crates/a/src/main.rs"), "");
        assert_eq!(module_of("crates/a/src/node.rs"), "node");
        assert_eq!(module_of("crates/a/src/gov/mod.rs"), "gov");
        assert_eq!(module_of("crates/a/src/gov/audit.rs"), "gov::audit");
        assert_eq!(module_of("model/src/suite.rs"), "suite");
    }

    #[test]
    fn references_expand_groups_and_skip_comments_strings_and_tests() {
        let refs = references("use crate::{a::X, b::{c, D}};\nlet x = super::y::z();\n");
        assert_eq!(
            refs,
            vec![
                vec!["crate", "a", "X"],
                vec!["crate", "b", "c"],
                vec!["crate", "b", "D"],
                vec!["super", "y", "z"],
            ]
        );
        let files = [
            ("crates/k/src/lib.rs", "//! Root.\nmod a;\nmod b;\n"),
            (
                "crates/k/src/a.rs",
                "//! A.\n// crate::b::X in a comment\nlet s = \"crate::b::X\";\n#[cfg(test)]\nmod tests { use crate::b::X; }\n",
            ),
            ("crates/k/src/b.rs", "//! B.\nuse crate::a::Y;\n"),
        ];
        let g = graph(&files);
        assert_eq!(g["a"], set(&[]));
        assert_eq!(g["b"], set(&["a"]));
        assert!(cycles(&g).is_empty());
    }

    #[test]
    fn inline_modules_are_modules() {
        assert_eq!(
            inline_modules("pub mod v1 {\n    include!(\"x\");\n}\nmod file;\nmod tests {}\n"),
            vec!["v1", "tests"]
        );
        let files = [
            (
                "crates/k/src/lib.rs",
                "//! Root.\nmod d;\npub mod v1 {\n}\n",
            ),
            ("crates/k/src/d.rs", "//! D.\nuse crate::v1::Envelope;\n"),
        ];
        assert_eq!(graph(&files)["d"], set(&["v1"]));
    }

    #[test]
    fn paths_resolve_to_the_deepest_module_and_reexports_to_their_source() {
        let files = [
            (
                "crates/k/src/lib.rs",
                "//! Root.\nmod gov;\nmod node;\npub use node::Node;\n",
            ),
            (
                "crates/k/src/node.rs",
                "//! Node.\nuse crate::gov::audit::Log;\n",
            ),
            ("crates/k/src/gov/mod.rs", "//! Gov.\nmod audit;\n"),
            (
                "crates/k/src/gov/audit.rs",
                "//! Audit.\nuse super::Gov;\nfn f() -> crate::Node { todo() }\n",
            ),
        ];
        let g = graph(&files);
        assert_eq!(g[""], set(&["node"]));
        assert_eq!(g["node"], set(&["gov::audit"]));
        assert_eq!(g["gov::audit"], set(&["gov", "node"]));
        assert_eq!(
            cycles(&g),
            vec![vec!["gov::audit", "node", "gov::audit"]]
                .into_iter()
                .map(|c| c.into_iter().map(str::to_owned).collect::<Vec<_>>())
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_cycle_a_missing_doc_line_an_oversize_file_and_an_unwrap_are_problems() {
        let big = format!("//! Big.\n{}", "fn f() {}\n".repeat(MAX_LINES));
        let sources = vec![
            (
                "crates/k/src/lib.rs".to_owned(),
                "//! Root.\nmod a;\nmod b;\n".to_owned(),
            ),
            (
                "crates/k/src/a.rs".to_owned(),
                "//! A.\nuse crate::b::X;\n".to_owned(),
            ),
            (
                "crates/k/src/b.rs".to_owned(),
                "use crate::a::Y;\n".to_owned(),
            ),
            ("crates/k/src/big.rs".to_owned(), big),
            (
                "crates/k/src/c.rs".to_owned(),
                "//! C.\nfn g(x: Option<u8>) -> u8 { x.unwrap() }\n".to_owned(),
            ),
        ];
        let problems: Vec<String> = check(&sources)
            .into_iter()
            .map(|p| format!("{}: {}", p.path, p.what))
            .collect();
        assert_eq!(problems.len(), 4, "{problems:#?}");
        assert!(problems[0].starts_with("crates/k: module import cycle: a -> b -> a"));
        assert!(problems[1].starts_with("crates/k/src/b.rs: the module does not open"));
        assert!(problems[2].starts_with("crates/k/src/big.rs: 1001 lines, over the limit"));
        assert!(problems[3].starts_with("crates/k/src/c.rs: line 2: unwrap()"));
    }
}

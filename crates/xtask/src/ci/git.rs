//! The change under review, read from git: changed files, commit messages and added lines since `--base`.

use std::path::Path;
use std::process::Command;

/// One line a commit of the change added.
pub(crate) struct AddedLine {
    pub(crate) commit: String,
    pub(crate) path: String,
    pub(crate) line: usize,
    pub(crate) text: String,
}

fn git(root: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Files that differ between `base` and the working tree.
pub(crate) fn changed_files(root: &Path, base: &str) -> Result<Vec<String>, String> {
    let text = git(root, &["diff", "--name-only", base, "--"])?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// The messages of the commits in `base..HEAD`.
pub(crate) fn commit_messages(root: &Path, base: &str) -> Result<String, String> {
    git(root, &["log", "--format=%B", &format!("{base}..HEAD")])
}

/// Every line added by the commits in `base..HEAD`, with its commit, file and new line number.
pub(crate) fn added_lines(root: &Path, base: &str) -> Result<Vec<AddedLine>, String> {
    let text = git(
        root,
        &[
            "log",
            "-p",
            "--no-color",
            "--unified=0",
            "--format=commit %H",
            &format!("{base}..HEAD"),
        ],
    )?;
    Ok(parse_log_patch(&text))
}

/// Parses `git log -p --unified=0 --format='commit %H'` into added lines.
pub(crate) fn parse_log_patch(text: &str) -> Vec<AddedLine> {
    let mut added = Vec::new();
    let (mut commit, mut path, mut line) = (String::new(), String::new(), 0usize);
    for raw in text.lines() {
        if let Some(hash) = raw.strip_prefix("commit ") {
            commit = hash.chars().take(12).collect();
        } else if let Some(new_path) = raw.strip_prefix("+++ ") {
            new_path
                .strip_prefix("b/")
                .unwrap_or(new_path)
                .clone_into(&mut path);
        } else if let Some(hunk) = raw.strip_prefix("@@ ") {
            line = hunk_start(hunk).unwrap_or(0);
        } else if let Some(content) = raw.strip_prefix('+') {
            added.push(AddedLine {
                commit: commit.clone(),
                path: path.clone(),
                line,
                text: content.to_owned(),
            });
            line += 1;
        }
    }
    added
}

/// The new-file start line of a hunk header body such as `-3,0 +4,2 @@`.
fn hunk_start(hunk: &str) -> Option<usize> {
    let plus = hunk.split_whitespace().find(|part| part.starts_with('+'))?;
    plus.trim_start_matches('+').split(',').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_log_patch_numbers_added_lines_per_commit_and_file() {
        let log = "commit 0123456789abcdef0123\n\ndiff --git a/x.toml b/x.toml\n--- a/x.toml\n+++ b/x.toml\n@@ -1,0 +2,2 @@\n+a = 1\n+b = 2\n";
        let added = parse_log_patch(log);
        assert_eq!(added.len(), 2);
        assert_eq!(added[1].commit, "0123456789ab");
        assert_eq!(added[1].path, "x.toml");
        assert_eq!(added[1].line, 3);
        assert_eq!(added[1].text, "b = 2");
    }
}

//! `cargo xtask tidy` on this repository (it must pass) and on scratch trees with one planted problem
//! each (it must fail and name it): specs/tidy.md.

use std::path::Path;
use std::process::Command;

/// Runs `xtask tidy` with `args`; returns (exit code, stdout).
fn tidy(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("tidy")
        .args(args)
        .output()
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A scratch tree with one crate `k` whose modules form a DAG: the root imports `a`, `a` imports `b`.
fn tidy_crate() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "crates/k/src/lib.rs",
        "//! Root.\nmod a;\nmod b;\npub use a::A;\n",
    );
    write(
        dir.path(),
        "crates/k/src/a.rs",
        "//! A.\nuse crate::b::B;\npub struct A(B);\n",
    );
    write(dir.path(), "crates/k/src/b.rs", "//! B.\npub struct B;\n");
    dir
}

// AC-TIDY-1
#[test]
fn this_repository_is_tidy() {
    let (code, stdout) = tidy(&[]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains(", 0 problems"), "{stdout}");
}

// AC-TIDY-2
#[test]
fn a_planted_import_cycle_fails() {
    let dir = tidy_crate();
    let root = dir.path().to_str().unwrap();
    let (code, stdout) = tidy(&["--root", root]);
    assert_eq!(code, Some(0), "the scratch crate starts tidy: {stdout}");
    write(
        dir.path(),
        "crates/k/src/b.rs",
        "//! B, now importing A back.\nuse crate::a::A;\npub struct B;\n",
    );
    let (code, stdout) = tidy(&["--root", root]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("crates/k: module import cycle: a -> b -> a"),
        "{stdout}"
    );
}

// AC-TIDY-3
#[test]
fn a_module_without_its_line_an_oversize_file_and_an_unwrap_fail() {
    let dir = tidy_crate();
    let root = dir.path().to_str().unwrap();
    write(dir.path(), "crates/k/src/b.rs", "pub struct B;\n");
    write(
        dir.path(),
        "crates/k/src/big.rs",
        &format!("//! Big.\n{}", "fn f() {}\n".repeat(1000)),
    );
    write(
        dir.path(),
        "crates/k/src/c.rs",
        "//! C.\nfn g(x: Option<u8>) -> u8 {\n    x.unwrap()\n}\n#[cfg(test)]\nmod tests {\n    fn h() { Some(1).unwrap(); }\n}\n",
    );
    let (code, stdout) = tidy(&["--root", root]);
    assert_eq!(code, Some(1), "{stdout}");
    assert!(
        stdout.contains("crates/k/src/b.rs: the module does not open with a `//!` line"),
        "{stdout}"
    );
    assert!(
        stdout.contains("crates/k/src/big.rs: 1001 lines, over the limit of 1000"),
        "{stdout}"
    );
    assert!(
        stdout.contains("crates/k/src/c.rs: line 3: unwrap()/expect( outside tests"),
        "{stdout}"
    );
    assert!(stdout.contains(", 3 problems"), "{stdout}");
}

// AC-TIDY-4
#[test]
fn the_graph_of_a_crate_lists_each_module_with_its_imports() {
    let dir = tidy_crate();
    let (code, stdout) = tidy(&[
        "--root",
        dir.path().to_str().unwrap(),
        "--graph",
        "crates/k",
    ]);
    assert_eq!(code, Some(0), "{stdout}");
    assert_eq!(stdout, "crate -> a\na -> b\nb -> \n");
}

//! ACES bite tests: plant a violation in a scratch copy of the tree, run `xtask ci --root <scratch>`,
//! and check that the right stage denies it with a clear message, and that the clean copy passes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tempfile::TempDir;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A scratch tree: the policies, the ACES spec and its tests, the PR template, and a tiny formatted
/// workspace (`crates/demo`) with no violation.
struct Scratch {
    dir: TempDir,
}

/// What one run of `xtask ci` left behind.
struct Run {
    code: Option<i32>,
    stdout: String,
    report: String,
}

impl Run {
    fn denies(&self, fragment: &str) -> bool {
        self.report
            .lines()
            .any(|l| l.starts_with("- **deny**:") && l.contains(fragment))
    }

    fn assert_denied(&self, fragment: &str) {
        assert_eq!(self.code, Some(1), "expected a deny\n{}", self.stdout);
        assert!(
            self.denies(fragment),
            "no deny containing {fragment:?}\n{}",
            self.stdout
        );
    }

    fn assert_passed(&self) {
        assert_eq!(self.code, Some(0), "expected no deny\n{}", self.stdout);
        assert!(!self.report.contains("- **deny**:"), "{}", self.report);
    }
}

const DEMO_MANIFEST: &str =
    "[package]\nname = \"demo\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n";
const DEMO_LIB: &str = "//! A library in the scratch tree.

/// Adds one, unless it overflows.
pub fn add_one(x: u32) -> Option<u32> {
    x.checked_add(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn adds() {
        assert_eq!(super::add_one(1).unwrap(), 2);
    }
}
";

impl Scratch {
    fn clean() -> Self {
        let scratch = Self {
            dir: tempfile::tempdir().unwrap(),
        };
        let root = repo_root();
        for rel in [
            "specs/aces.md",
            ".github/PULL_REQUEST_TEMPLATE.md",
            "rust-toolchain.toml",
            // The one test outside xtask that proves an AC of specs/aces.md (AC-ACES-15).
            "crates/arqon-shield/tests/it/compat_old_client.rs",
        ] {
            scratch.copy(&root, rel);
        }
        for dir in ["policy", "crates/xtask/src", "crates/xtask/tests"] {
            scratch.copy_dir(&root, dir);
        }
        scratch.write(".gitignore", "/target\n");
        scratch.write(
            "Cargo.toml",
            "[workspace]\nresolver = \"3\"\nmembers = [\"crates/demo\"]\n",
        );
        scratch.write("crates/demo/Cargo.toml", DEMO_MANIFEST);
        scratch.write("crates/demo/src/lib.rs", DEMO_LIB);
        scratch
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn copy(&self, from_root: &Path, rel: &str) {
        self.write(rel, &std::fs::read_to_string(from_root.join(rel)).unwrap());
    }

    fn copy_dir(&self, from_root: &Path, rel: &str) {
        for entry in std::fs::read_dir(from_root.join(rel)).unwrap() {
            let entry = entry.unwrap();
            let child = format!("{rel}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                self.copy_dir(from_root, &child);
            } else {
                self.copy(from_root, &child);
            }
        }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
        command
            .arg("ci")
            .arg("--root")
            .arg(self.path())
            .args(args)
            .current_dir(self.path());
        // The scratch tree is judged on its own: not as part of an instrumented run of ours
        // (`ci/test` exports `cargo llvm-cov show-env`).
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.contains("LLVM_COV") || name == "RUSTC_WRAPPER" || name == "LLVM_PROFILE_FILE" {
                command.env_remove(name.as_ref());
            }
        }
        let output = command.output().unwrap();
        let report =
            std::fs::read_to_string(self.path().join("target/aces/report.md")).unwrap_or_default();
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            report,
        }
    }

    fn git(&self, args: &[&str]) {
        let status = Command::new("git")
            .args([
                "-c",
                "user.name=aces",
                "-c",
                "user.email=aces@example.invalid",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .output()
            .unwrap();
        assert!(
            status.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
}

// AC-ACES-1
#[test]
fn spec_stage_denies_a_spec_without_acceptance_criteria() {
    let scratch = Scratch::clean();
    scratch.run(&["--stage", "spec"]).assert_passed();
    let spec = std::fs::read_to_string(scratch.path().join("specs/aces.md")).unwrap();
    let without_acs = &spec[..spec.find("## Acceptance criteria").unwrap()];
    scratch.write("specs/broken.md", without_acs);
    let run = scratch.run(&["--stage", "spec"]);
    run.assert_denied("spec: specs/broken.md has no `## Acceptance criteria` section");
    run.assert_denied("spec: specs/broken.md has no acceptance criteria");
}

// AC-ACES-2
#[test]
fn spec_stage_denies_malformed_and_uncited_acs() {
    let scratch = Scratch::clean();
    let spec = std::fs::read_to_string(scratch.path().join("specs/aces.md")).unwrap();
    // Built at run time: this file is copied into the scratch tree, and a literal would cite it.
    let uncited = format!("AC-{}-{}", "ACES", 99);
    let planted = format!(
        "{spec}- **{uncited}**: Given nothing, when nothing, then nothing.\n- **AC-aces-100**: Given x, when y, then z.\n"
    );
    scratch.write("specs/aces.md", &planted);
    let run = scratch.run(&["--stage", "spec"]);
    run.assert_denied(&format!(
        "spec: {uncited} (specs/aces.md) is cited by no test"
    ));
    run.assert_denied("malformed AC ID `AC-aces-100`");
}

// AC-ACES-3
#[test]
fn spec_stage_denies_a_proto_change_without_a_spec_and_a_pr_without_one() {
    let scratch = Scratch::clean();
    scratch.write(
        "proto/arqon/v1/envelope.proto",
        "syntax = \"proto3\";\nmessage Envelope {}\n",
    );
    scratch.git(&["init", "-q"]);
    scratch.git(&["add", "-A"]);
    scratch.git(&["commit", "-q", "-m", "base"]);
    scratch.write(
        "proto/arqon/v1/envelope.proto",
        "syntax = \"proto3\";\nmessage Envelope {\n  string id = 1;\n}\n",
    );
    scratch.git(&["commit", "-q", "-am", "proto: add an id"]);
    let run = scratch.run(&["--stage", "spec", "--base", "HEAD~1"]);
    run.assert_denied(
        "spec: the change touches proto/arqon/v1/envelope.proto but changes or cites no spec",
    );

    let template =
        std::fs::read_to_string(scratch.path().join(".github/PULL_REQUEST_TEMPLATE.md")).unwrap();
    scratch.write("pr.md", &template);
    let pr = scratch.path().join("pr.md");
    let run = scratch.run(&[
        "--stage",
        "spec",
        "--base",
        "HEAD~1",
        "--pr",
        pr.to_str().unwrap(),
    ]);
    run.assert_denied("links no spec");
    run.assert_denied("leaves the required section `Testing` unfilled");

    let filled = template
        .replace("- Link(s): ", "- Link(s): specs/aces.md")
        .replace("**What does this PR do, in one or two sentences?**\n\n- ", "**What does this PR do?**\n\n- Adds an id.")
        .replace("- [ ] Additive only", "- [x] Additive only")
        .replace("**Invariants this PR relies on or introduces** (e.g. \"a subject is only built from a verified tenant\"):\n\n- ", "Invariants:\n\n- ids are unique")
        .replace("- [ ] Inputs validated at the trust boundary", "- [x] Inputs validated at the trust boundary")
        .replace("- [ ] `./ci/test` passes locally", "- [x] `./ci/test` passes locally");
    scratch.write("pr.md", &filled);
    scratch
        .run(&[
            "--stage",
            "spec",
            "--base",
            "HEAD~1",
            "--pr",
            pr.to_str().unwrap(),
        ])
        .assert_passed();
}

// AC-ACES-4
#[test]
fn static_stage_denies_unwrap_in_a_library_and_an_untracked_todo() {
    let scratch = Scratch::clean();
    scratch.run(&["--stage", "static"]).assert_passed();
    let planted = DEMO_LIB.replace(
        "    x.checked_add(1)\n",
        "    // TODO make this total\n    Some(x.checked_add(1).unwrap())\n",
    );
    scratch.write("crates/demo/src/lib.rs", &planted);
    let run = scratch.run(&["--stage", "static"]);
    run.assert_denied("static: unwrap()/expect() outside tests at crates/demo/src/lib.rs:6: Some(x.checked_add(1).unwrap())");
    run.assert_denied(
        "static: TODO/FIXME without an issue reference (#<n>) at crates/demo/src/lib.rs:5",
    );
    let unwraps = run
        .report
        .lines()
        .filter(|l| l.contains("unwrap()/expect() outside tests"))
        .count();
    assert_eq!(
        unwraps, 1,
        "the unwrap under #[cfg(test)] must pass\n{}",
        run.report
    );
}

// AC-ACES-5
#[test]
fn schema_stage_denies_a_breaking_proto_change_and_a_stale_state_machine_doc() {
    let scratch = Scratch::clean();
    scratch.write(
        "target/aces/results/buf.json",
        "{\"ok\": true, \"summary\": \"lint, format, breaking: clean\"}",
    );
    scratch.write(
        "target/aces/results/gen.json",
        "{\"ok\": true, \"summary\": \"state_machines/ up to date\"}",
    );
    scratch.run(&["--stage", "schema"]).assert_passed();

    // Through buf's own script: a breaking change reported by `buf breaking`.
    std::fs::remove_file(scratch.path().join("target/aces/results/buf.json")).unwrap();
    scratch.write(
        "ci/buf.sh",
        "echo 'proto/arqon/v1/envelope.proto:5:3:Field \"1\" with name \"id\" on message \"Envelope\" changed option \"json_name\" from \"id\" to \"ident\".' >&2\nexit 100\n",
    );
    scratch
        .run(&["--stage", "schema"])
        .assert_denied("schema: `buf` failed (exit 100): proto/arqon/v1/envelope.proto:5:3:Field");

    // Through facts: gen reports state_machines/session.md stale.
    scratch.write("target/aces/results/gen.json", "{\"ok\": false, \"summary\": \"state_machines/session.md differs from the generated text\"}");
    scratch.run(&["--stage", "schema"]).assert_denied(
        "schema: `gen` failed: state_machines/session.md differs from the generated text",
    );
}

// AC-ACES-6
#[test]
fn security_stage_denies_a_secret_without_printing_it_and_honours_the_allowlist() {
    let scratch = Scratch::clean();
    scratch.run(&["--stage", "security"]).assert_passed();
    let key = format!("{}{}", "AKIA", "QWERTYUIOPASDFGH");
    scratch.write(
        "crates/demo/src/keys.rs",
        &format!("//! Keys.\npub const ID: &str = \"{key}\";\n"),
    );
    let run = scratch.run(&["--stage", "security"]);
    run.assert_denied("security: aws-access-key candidate at crates/demo/src/keys.rs:2 (AKIA…)");
    assert!(
        !run.stdout.contains(&key) && !run.report.contains(&key),
        "the secret itself was printed"
    );
    let facts = std::fs::read_to_string(scratch.path().join("target/aces/security.json")).unwrap();
    assert!(!facts.contains(&key), "the secret itself is in the facts");

    let allow = std::fs::read_to_string(scratch.path().join("policy/secrets_allow.txt")).unwrap();
    scratch.write(
        "policy/secrets_allow.txt",
        &format!("{allow}crates/demo/src/keys.rs  # a fixture\n"),
    );
    scratch.run(&["--stage", "security"]).assert_passed();
}

// AC-ACES-7
#[test]
fn security_stage_denies_a_production_config_without_tls() {
    let scratch = Scratch::clean();
    scratch.write(
        "deploy/arqon.dev.toml",
        "[shield]\nlisten = \"127.0.0.1:8080\"\n",
    );
    scratch.write("deploy/arqon.toml", "[shield]\nlisten = \"0.0.0.0:443\"\n");
    scratch.run(&["--stage", "security"]).assert_denied(
        "security: deploy/arqon.toml is not a dev config and does not enable TLS (no [tls] table)",
    );
    scratch.write("deploy/arqon.toml", "[shield]\nlisten = \"0.0.0.0:443\"\n[shield.tls]\ncert_file = \"/etc/arqon/cert.pem\"\nkey_file = \"/etc/arqon/key.pem\"\n");
    scratch.run(&["--stage", "security"]).assert_passed();
}

// AC-ACES-8
#[test]
fn observability_stage_denies_a_bad_metric_name_and_a_logged_token() {
    let scratch = Scratch::clean();
    scratch.run(&["--stage", "observability"]).assert_passed();
    scratch.write(
        "crates/demo/src/obs.rs",
        "//! Metrics.\npub fn record(token: &str) {\n    metrics::counter!(\"shield_connects\").increment(1);\n    tracing::info!(%token, \"refreshed\");\n}\n",
    );
    let run = scratch.run(&["--stage", "observability"]);
    run.assert_denied("observability: metric name `shield_connects` at crates/demo/src/obs.rs:3");
    run.assert_denied("observability: a log macro at crates/demo/src/obs.rs:4 records `token`");
}

// AC-ACES-9
#[test]
fn compat_stage_denies_a_message_without_a_golden_vector() {
    let scratch = Scratch::clean();
    scratch.write(
        "proto/arqon/v1/session.proto",
        "syntax = \"proto3\";\nmessage Welcome {}\nmessage Drain {}\n",
    );
    scratch.write(
        "golden/messages/welcome.json",
        "{\"message\": \"arqon.v1.Welcome\", \"hex\": \"\"}\n",
    );
    scratch
        .run(&["--stage", "compat"])
        .assert_denied("compat: message Drain has no golden vector in golden/");
    scratch.write(
        "golden/messages/drain.json",
        "{\"message\": \"arqon.v1.Drain\", \"hex\": \"\"}\n",
    );
    scratch.run(&["--stage", "compat"]).assert_passed();
}

// AC-ACES-10
#[test]
fn a_check_that_cannot_run_is_not_judged_in_the_fast_tier_and_denies_in_full() {
    let scratch = Scratch::clean();
    let fast = scratch.run(&["--stage", "perf"]);
    fast.assert_passed();
    assert!(
        fast.report
            .contains("- not judged in this tier: `bench`: ci/bench.sh not present"),
        "{}",
        fast.report
    );
    // AC-ACES-16: the planted skip is not called a pass.
    assert!(
        fast.stdout.contains("perf: not judged in this tier"),
        "{}",
        fast.stdout
    );
    assert!(
        fast.stdout
            .contains("1 stages: 0 pass, 0 FAIL, 0 partly judged, 1 not judged"),
        "{}",
        fast.stdout
    );
    let facts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.path().join("target/aces/perf.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(facts["checks"]["bench"]["ran"], false);
    assert!(
        facts["checks"]["bench"]["skipped"]["reason"]
            .as_str()
            .unwrap()
            .contains("ci/bench.sh not present")
    );
    scratch.run(&["--stage", "perf", "--full"]).assert_denied(
        "perf: required check `bench` did not run in --full: ci/bench.sh not present",
    );
}

// AC-ACES-13
#[test]
fn a_stage_without_its_policy_fails_closed() {
    let scratch = Scratch::clean();
    std::fs::remove_file(scratch.path().join("policy/deploy.rego")).unwrap();
    scratch
        .run(&["--stage", "deploy"])
        .assert_denied("deploy: policy could not be evaluated (fail closed)");
}

// AC-ACES-11, AC-ACES-14
#[test]
fn the_clean_tree_passes_every_stage_of_the_fast_tier_quickly_and_leaves_facts_and_a_report() {
    let scratch = Scratch::clean();
    scratch.write("target/aces/results/buf.json", "{\"ok\": true}");
    scratch.write("target/aces/results/gen.json", "{\"ok\": true}");
    let started = Instant::now();
    let run = scratch.run(&[]);
    let took = started.elapsed();
    run.assert_passed();
    assert!(took < Duration::from_mins(1), "the fast tier took {took:?}");
    for stage in [
        "spec",
        "schema",
        "static",
        "build",
        "unit",
        "integration",
        "security",
        "perf",
        "chaos",
        "observability",
        "compat",
        "deploy",
    ] {
        assert!(
            scratch
                .path()
                .join(format!("target/aces/{stage}.json"))
                .is_file(),
            "no facts for {stage}"
        );
        assert!(
            run.report.contains(&format!("\n## {stage} (")),
            "no report section for {stage}"
        );
    }
    assert!(run.stdout.contains("12 stages: "), "{}", run.stdout);
    assert!(run.stdout.contains(" 0 FAIL, "), "{}", run.stdout);
}

// AC-ACES-12
#[test]
fn verify_policies_runs_every_test_rule() {
    let scratch = Scratch::clean();
    let run = scratch.run(&["--verify-policies"]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    assert!(!run.stdout.contains("FAIL"), "{}", run.stdout);
    std::fs::remove_file(scratch.path().join("policy/chaos_test.rego")).unwrap();
    let run = scratch.run(&["--verify-policies"]);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stdout.contains("FAIL chaos.rego: has a _test.rego"),
        "{}",
        run.stdout
    );
}

// AC-ACES-19
#[test]
fn the_fast_tier_builds_arq_twice_and_judges_the_hashes() {
    let scratch = Scratch::clean();
    scratch.write(
        "Cargo.toml",
        "[workspace]\nresolver = \"3\"\nmembers = [\"crates/demo\", \"crates/arq\"]\n",
    );
    scratch.write(
        "crates/arq/Cargo.toml",
        "[package]\nname = \"arq\"\nversion = \"0.1.0\"\nedition = \"2024\"\n\n[dependencies]\n",
    );
    scratch.write(
        "crates/arq/src/main.rs",
        "//! A binary named like ours.\n\nfn main() {\n    println!(\"arq\");\n}\n",
    );
    let status = Command::new("cargo")
        .args(["generate-lockfile", "--offline"])
        .current_dir(scratch.path())
        .status()
        .unwrap();
    assert!(status.success());
    let run = scratch.run(&["--stage", "build"]);
    run.assert_passed();
    assert!(
        run.stdout.contains("build          pass          1/1"),
        "{}",
        run.stdout
    );
    let facts: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(scratch.path().join("target/aces/build.json")).unwrap(),
    )
    .unwrap();
    let repro = &facts["checks"]["repro"];
    assert_eq!(repro["profile"], "dev");
    assert_eq!(repro["binary"], "target/debug/arq");
    let hashes = repro["hashes"].as_array().unwrap();
    assert_eq!(hashes.len(), 2);
    assert_eq!(hashes[0], hashes[1]);
}

//! Integration tests for the `arq` binary, run through the real executable.

// Shared fixtures below are test code outside `#[test]` functions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli_auth;
mod cli_config;
mod cli_gov;
mod cli_help;
mod cli_history;
mod cli_policy;
mod cli_serve;
#[cfg(unix)]
mod deploy_sim;
#[cfg(unix)]
mod dev_stack;
mod gov_cluster;
mod obs_serve;
#[cfg(target_os = "linux")]
mod reconnect_storm;
#[cfg(unix)]
mod status_health;

use assert_cmd::Command;

/// The `arq` binary, with `NO_COLOR` unset so colour decisions come from the terminal check alone.
pub(crate) fn arq() -> Command {
    let mut command = Command::cargo_bin("arq").expect("arq binary");
    command.env_remove("NO_COLOR");
    command
}

/// Runs `arq` with `args` and returns (exit code, stdout, stderr).
pub(crate) fn run(args: &[&str], cwd: &std::path::Path) -> (i32, String, String) {
    let output = arq().args(args).current_dir(cwd).output().expect("run arq");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8(output.stdout).expect("utf8 stdout"),
        String::from_utf8(output.stderr).expect("utf8 stderr"),
    )
}

//! `--help`, colour and shell completions.

use crate::run;

// AC-CLI-1
#[test]
fn ac_cli_1_help_lists_commands_without_ansi_when_piped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, stdout, _) = run(&["--help"], dir.path());
    assert_eq!(code, 0);
    for command in ["serve", "auth", "config", "completions"] {
        assert!(
            stdout.contains(&format!("  {command} ")),
            "{command} missing:\n{stdout}"
        );
    }
    assert!(!stdout.contains('\u{1b}'), "ANSI escape in piped help");
    // No arguments: help on stderr, usage exit code.
    let (code, _, stderr) = run(&[], dir.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("Usage: arq"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'));
    // Colour can be forced, which shows the check above can fail.
    let (_, forced, _) = run(&["--color", "always", "--help"], dir.path());
    assert!(forced.contains('\u{1b}'), "--color always gives no colour");
}

// AC-CLI-6
#[test]
fn ac_cli_6_completions_for_each_shell() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (shell, marker) in [
        ("bash", "_arq()"),
        ("zsh", "#compdef arq"),
        ("fish", "complete -c arq"),
    ] {
        let (code, stdout, _) = run(&["completions", shell], dir.path());
        assert_eq!(code, 0, "{shell}");
        assert!(stdout.contains(marker), "{shell}: {marker} missing");
        assert!(
            stdout.contains("serve") && stdout.contains("config"),
            "{shell}"
        );
    }
    let (code, _, stderr) = run(&["completions", "tcsh"], dir.path());
    assert_eq!(code, 2);
    assert!(stderr.contains("tcsh"), "{stderr}");
}

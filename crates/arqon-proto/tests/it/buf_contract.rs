//! The buf guards of `proto/`, run for real: lint, format, breaking against the baseline, and the
//! proof that a renamed field fails `buf breaking`. buf is installed from npm by `ci/buf.sh`.

use std::path::PathBuf;
use std::process::Command;

use arqon_proto::FILE_DESCRIPTOR_SET;
use prost_reflect::DescriptorPool;

// AC-PROTOCOL-1
// AC-PROTOCOL-2
#[test]
fn buf_lint_format_and_breaking_pass_and_a_renamed_field_fails() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("bash")
        .arg(root.join("ci/buf.sh"))
        .current_dir(&root)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ci/buf.sh failed:\n{stdout}\n{stderr}"
    );
    for step in [
        "buf lint",
        "buf format --diff --exit-code",
        "buf breaking --against golden/proto-baseline.binpb",
    ] {
        assert!(stdout.contains(step), "{step} did not run:\n{stdout}");
    }
    assert!(
        stdout.contains(r#"changed name from "room" to "room_name""#),
        "the renamed field was not reported:\n{stdout}"
    );
}

/// Every enum's zero value is `<ENUM>_UNSPECIFIED` and every value carries the enum's prefix
/// (the invariant in `specs/protocol.md`; buf lint checks the same, this keeps it in `cargo test`).
#[test]
fn every_enum_starts_at_unspecified() {
    let pool = DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut enums = 0;
    for descriptor in pool.all_enums() {
        enums += 1;
        let prefix = upper_snake(descriptor.name());
        let zero = descriptor.get_value(0).unwrap();
        assert_eq!(zero.name(), format!("{prefix}_UNSPECIFIED"));
        for value in descriptor.values() {
            assert!(
                value.name().starts_with(&format!("{prefix}_")),
                "{}",
                value.name()
            );
        }
    }
    assert_eq!(
        enums, 4,
        "ErrorCode, PresenceUpdateKind, LeaveReason, AlertSeverity"
    );
}

fn upper_snake(camel: &str) -> String {
    let mut out = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

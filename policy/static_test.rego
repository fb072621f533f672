# Tests for static.rego.
package main

ok := {"ran": true, "ok": true, "exit_code": 0}

clean := {"stage": "static", "full": true, "checks": {"fmt": ok, "clippy": ok, "deny": {"ran": true, "ok": true, "exit_code": 0, "advisories_ran": true}, "forbidden": {"ran": true, "unwrap": [], "todo": []}}}

test_clean_static_passes if {
	count(deny) == 0 with input as clean
	count(warn) == 0 with input as clean
}

test_unwrap_in_library_denies if {
	inp := object.union(clean, {"checks": {"forbidden": {"unwrap": [{"path": "crates/a/src/lib.rs", "line": 3, "text": "x.unwrap()"}]}}})
	deny == {"static: unwrap()/expect() outside tests at crates/a/src/lib.rs:3: x.unwrap()"} with input as inp
}

test_todo_without_issue_denies if {
	inp := object.union(clean, {"checks": {"forbidden": {"todo": [{"path": "crates/a/src/lib.rs", "line": 7, "text": "// TODO later"}]}}})
	deny == {"static: TODO/FIXME without an issue reference (#<n>) at crates/a/src/lib.rs:7: // TODO later"} with input as inp
}

test_deny_without_advisories_warns if {
	inp := object.union(clean, {"checks": {"deny": {"advisories_ran": false}}})
	warn == {"static: cargo deny ran without the RustSec advisories database"} with input as inp
}

test_unformatted_code_denies if {
	inp := object.union(clean, {"checks": {"fmt": {"ran": true, "ok": false, "exit_code": 1, "summary": "Diff in crates/a/src/lib.rs:1"}}})
	deny == {"static: `fmt` failed (exit 1): Diff in crates/a/src/lib.rs:1"} with input as inp
}

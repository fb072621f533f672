# Tests for the shared rules in common.rego (loaded alone, so `required_full` is its default).
package main

test_skipped_check_warns_in_fast_tier if {
	w := warn with input as {"stage": "x", "full": false, "checks": {"a": {"ran": false, "skipped": {"reason": "tool absent"}}}}
	w == {"x: `a` skipped: tool absent"}
	d := deny with input as {"stage": "x", "full": false, "checks": {"a": {"ran": false, "skipped": {"reason": "tool absent"}}}}
	count(d) == 0
}

test_failed_tool_denies_with_exit_code if {
	d := deny with input as {"stage": "x", "full": false, "checks": {"a": {"ran": true, "ok": false, "exit_code": 3, "summary": "boom"}}}
	d == {"x: `a` failed (exit 3): boom"}
}

test_failed_result_file_denies_without_exit_code if {
	d := deny with input as {"stage": "x", "full": false, "checks": {"a": {"ran": true, "ok": false, "summary": "stale"}}}
	d == {"x: `a` failed: stale"}
}

test_error_denies_in_any_tier if {
	d := deny with input as {"stage": "x", "full": false, "checks": {"pr": {"ran": false, "error": "cannot read pr.md"}}}
	d == {"x: `pr` could not run: cannot read pr.md"}
}

test_passing_check_is_silent if {
	inp := {"stage": "x", "full": true, "checks": {"a": {"ran": true, "ok": true, "exit_code": 0}}}
	count(deny) == 0 with input as inp
	count(warn) == 0 with input as inp
}

test_optional_skip_only_warns_in_full if {
	inp := {"stage": "x", "full": true, "checks": {"a": {"ran": false, "skipped": {"reason": "no --pr given"}}}}
	count(deny) == 0 with input as inp
	count(warn) == 1 with input as inp
}

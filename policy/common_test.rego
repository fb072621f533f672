# Tests for the shared rules in common.rego (loaded alone, so `required_full` is its default).
package main

test_skipped_check_is_not_judged_and_not_denied_in_fast_tier if {
	inp := {"stage": "x", "full": false, "checks": {"a": {"ran": false, "skipped": {"reason": "tool absent"}}}}
	not_run == {"a": "tool absent"} with input as inp
	count(deny) == 0 with input as inp
	count(warn) == 0 with input as inp
}

test_required_check_missing_from_facts_is_not_run if {
	nr := not_run with input as {"stage": "x", "full": false, "checks": {}} with data.main.required_full as {"b"}
	nr == {"b": "no facts recorded"}
}

test_required_skip_denies_in_full if {
	inp := {"stage": "x", "full": true, "checks": {"a": {"ran": false, "skipped": {"reason": "tool absent"}}}}
	d := deny with input as inp with data.main.required_full as {"a"}
	d == {"x: required check `a` did not run in --full: tool absent"}
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

test_optional_skip_is_not_judged_in_full if {
	inp := {"stage": "x", "full": true, "checks": {"a": {"ran": false, "skipped": {"reason": "no --pr given"}}}}
	count(deny) == 0 with input as inp
	not_run == {"a": "no --pr given"} with input as inp
}

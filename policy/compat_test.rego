# Tests for compat.rego.
package main

ok := {"ran": true, "ok": true, "exit_code": 0}

clean := {"stage": "compat", "full": true, "checks": {"golden": {"ran": true, "messages": 2, "missing": []}, "buf": ok, "old_client": ok}}

test_clean_compat_passes if {
	count(deny) == 0 with input as clean
}

test_message_without_vector_denies if {
	inp := object.union(clean, {"checks": {"golden": {"missing": ["Welcome"]}}})
	deny == {"compat: message Welcome has no golden vector in golden/"} with input as inp
}

test_no_old_client_test_denies_in_full if {
	inp := object.union(clean, {"checks": {"old_client": {"ran": false, "skipped": {"reason": "no previous release"}}}})
	deny == {"compat: required check `old_client` did not run in --full: no previous release"} with input as inp
}

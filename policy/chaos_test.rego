# Tests for chaos.rego.
package main

test_clean_fuzz_passes if {
	count(deny) == 0 with input as {"stage": "chaos", "full": true, "checks": {"fuzz": {"ran": true, "ok": true, "exit_code": 0, "crashes": []}}}
}

test_fuzz_crash_denies if {
	d := deny with input as {"stage": "chaos", "full": false, "checks": {"fuzz": {"ran": true, "ok": true, "crashes": ["envelope_decode"]}}}
	d == {"chaos: fuzzing found crashes: envelope_decode"}
}

test_no_fuzz_denies_in_full if {
	d := deny with input as {"stage": "chaos", "full": true, "checks": {"fuzz": {"ran": false, "skipped": {"reason": "ci/fuzz.sh not present"}}}}
	d == {"chaos: required check `fuzz` did not run in --full: ci/fuzz.sh not present"}
}

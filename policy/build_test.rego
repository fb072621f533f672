# Tests for build.rego.
package main

test_same_hash_passes if {
	count(deny) == 0 with input as {"stage": "build", "full": true, "checks": {"repro": {"ran": true, "ok": true, "hashes": ["ab", "ab"]}}}
}

test_different_hashes_deny if {
	d := deny with input as {"stage": "build", "full": false, "checks": {"repro": {"ran": true, "hashes": ["ab", "cd"], "binary": "target/debug/arq"}}}
	d == {"build: the target/debug/arq binary is not reproducible: ab != cd"}
}

test_not_built_denies_in_full if {
	d := deny with input as {"stage": "build", "full": true, "checks": {"repro": {"ran": false, "skipped": {"reason": "runs in --full"}}}}
	d == {"build: required check `repro` did not run in --full: runs in --full"}
}

# Tests for unit.rego.
package main

clean := {"stage": "unit", "full": true, "checks": {"seeds": {"ran": true, "findings": []}, "nextest": {"ran": true, "ok": true, "exit_code": 0}, "coverage": {"ran": true, "ok": true, "line_percent": 91.5, "crates": {"arqon-core": {"percent": 99}, "arqon-shield": {"percent": 99}}}}}

test_clean_unit_passes if {
	count(deny) == 0 with input as clean
}

test_unseeded_randomness_denies if {
	inp := object.union(clean, {"checks": {"seeds": {"findings": [{"path": "crates/a/tests/it/x.rs", "line": 4, "text": "rand::thread_rng()"}]}}})
	deny == {"unit: unseeded randomness in test code at crates/a/tests/it/x.rs:4: rand::thread_rng() (use a fixed seed)"} with input as inp
}

test_low_core_coverage_denies if {
	inp := object.union(clean, {"checks": {"coverage": {"crates": {"arqon-core": {"percent": 50}}}}})
	deny == {sprintf("unit: line coverage of arqon-core is 50%%, its floor is %v%%", [coverage_floors["arqon-core"]])} with input as inp
}

test_low_shield_coverage_denies if {
	inp := object.union(clean, {"checks": {"coverage": {"crates": {"arqon-shield": {"percent": 40}}}}})
	deny == {sprintf("unit: line coverage of arqon-shield is 40%%, its floor is %v%%", [coverage_floors["arqon-shield"]])} with input as inp
}

test_a_crate_missing_from_the_report_denies if {
	inp := {"stage": "unit", "full": false, "checks": {"coverage": {"ran": true, "ok": true, "crates": {"arqon-core": {"percent": 99}}}}}
	deny == {"unit: the coverage report has no figure for arqon-shield"} with input as inp
}

test_missing_coverage_tool_denies_in_full if {
	inp := object.union(clean, {"checks": {"coverage": {"ran": false, "skipped": {"reason": "cargo-llvm-cov not installed"}}}})
	deny == {"unit: required check `coverage` did not run in --full: cargo-llvm-cov not installed"} with input as inp
}

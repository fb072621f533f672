# Tests for integration.rego.
package main

clean := {"stage": "integration", "full": true, "checks": {"nats": {"ran": true, "present": true}, "topology": {"ran": true, "ok": true, "exit_code": 0, "tests_run": 6}}}

test_clean_integration_passes if {
	count(deny) == 0 with input as clean
}

test_zero_topology_tests_denies if {
	inp := object.union(clean, {"checks": {"topology": {"tests_run": 0}}})
	deny == {"integration: no topology test ran (test names containing `topology` or `cluster`)"} with input as inp
}

test_missing_nats_denies_in_full_only if {
	inp := object.union(clean, {"checks": {"nats": {"present": false}}})
	deny == {"integration: nats-server is not installed, the topology tests cannot run"} with input as inp
	count(deny) == 0 with input as object.union(inp, {"full": false})
}

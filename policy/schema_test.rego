# Tests for schema.rego.
package main

ok := {"ran": true, "ok": true, "exit_code": 0, "summary": ""}

clean := {"stage": "schema", "full": true, "checks": {"buf": ok, "gen": ok, "model": ok, "transitions": {"ran": true, "ok": true, "covered": 40, "total": 40}}}

test_clean_schema_passes if {
	count(deny) == 0 with input as clean
}

test_breaking_proto_change_denies if {
	bad := {"ran": true, "ok": false, "exit_code": 100, "summary": "proto/arqon/v1/envelope.proto:12:3:Field \"3\" on message \"Header\" changed name"}
	inp := object.union(clean, {"checks": {"buf": bad}})
	deny == {"schema: `buf` failed (exit 100): proto/arqon/v1/envelope.proto:12:3:Field \"3\" on message \"Header\" changed name"} with input as inp
}

test_stale_state_machine_doc_denies if {
	bad := {"ran": true, "ok": false, "summary": "state_machines/session.md is stale"}
	inp := {"stage": "schema", "full": true, "checks": {"buf": ok, "gen": bad, "model": ok, "transitions": clean.checks.transitions}}
	deny == {"schema: `gen` failed: state_machines/session.md is stale"} with input as inp
}

test_partial_transition_coverage_denies if {
	inp := object.union(clean, {"checks": {"transitions": {"ran": true, "ok": true, "covered": 39, "total": 40}}})
	deny == {"schema: transition coverage 39/40, ACES requires every transition"} with input as inp
}

test_missing_buf_denies_only_in_full if {
	inp := object.union(clean, {"checks": {"buf": {"ran": false, "skipped": {"reason": "ci/buf.sh not present"}}}})
	deny == {"schema: required check `buf` did not run in --full: ci/buf.sh not present"} with input as inp
	count(deny) == 0 with input as object.union(inp, {"full": false})
}

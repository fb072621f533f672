# Tests for observability.rego.
package main

clean := {"stage": "observability", "full": true, "checks": {
	"metrics": {"ran": true, "names": ["arqonbus.shield.connects_total"], "bad": []},
	"logs": {"ran": true, "findings": []},
	"spans": {"ran": true, "names": ["publish"]},
}}

test_clean_observability_passes if {
	count(deny) == 0 with input as clean
	count(warn) == 0 with input as clean
}

test_bad_metric_name_denies if {
	inp := object.union(clean, {"checks": {"metrics": {"bad": [{"path": "crates/s/src/m.rs", "line": 5, "name": "shield_connects"}]}}})
	deny == {"observability: metric name `shield_connects` at crates/s/src/m.rs:5 does not follow arqonbus.<component>.<what>"} with input as inp
}

test_token_in_log_denies if {
	inp := object.union(clean, {"checks": {"logs": {"findings": [{"path": "crates/s/src/a.rs", "line": 9, "var": "token"}]}}})
	deny == {"observability: a log macro at crates/s/src/a.rs:9 records `token`; tokens, payloads and secrets never go to logs"} with input as inp
}

test_no_span_warns if {
	inp := object.union(clean, {"checks": {"spans": {"names": []}}})
	warn == {"observability: no tracing span found in crates/ (connect, publish, fan-out should have one)"} with input as inp
}

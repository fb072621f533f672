# Tests for perf.rego.
package main

test_within_budget_passes if {
	count(deny) == 0 with input as {"stage": "perf", "full": true, "checks": {"bench": {"ran": true, "ok": true, "benches": [{"name": "publish", "ratio": 1.02, "budget": 1.1}]}}}
}

test_over_budget_denies if {
	d := deny with input as {"stage": "perf", "full": false, "checks": {"bench": {"ran": true, "ok": true, "benches": [{"name": "publish", "ratio": 1.5, "budget": 1.1}]}}}
	d == {"perf: publish is 1.5× its baseline, over the budget of 1.1×"}
}

test_no_bench_warns_fast if {
	w := warn with input as {"stage": "perf", "full": false, "checks": {"bench": {"ran": false, "skipped": {"reason": "no result file"}}}}
	w == {"perf: `bench` skipped: no result file"}
}

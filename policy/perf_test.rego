# Tests for perf.rego: one planted violation per rule.
package main

bench(benches) := {"stage": "perf", "full": true, "checks": {"bench": {"ran": true, "ok": true, "benches": benches}}}

test_within_tolerance_passes if {
	inp := bench([
		{"name": "throughput", "ratio": 0.6, "baseline": 0.65, "better": "higher", "tolerance": 0.2},
		{"name": "pubsub_p50", "ratio": 1.5, "baseline": 1.3, "better": "lower", "tolerance": 0.3},
	])
	count(deny) == 0 with input as inp
}

test_higher_is_better_ratio_that_fell_denies if {
	inp := bench([{"name": "throughput", "ratio": 0.5, "baseline": 0.65, "better": "higher", "tolerance": 0.2}])
	deny == {"perf: throughput ratio 0.5 is below its baseline 0.65 by more than 20%"} with input as inp
}

test_lower_is_better_ratio_that_rose_denies if {
	inp := bench([{"name": "pubsub_p50", "ratio": 2, "baseline": 1.3, "better": "lower", "tolerance": 0.3}])
	deny == {"perf: pubsub_p50 ratio 2 is above its baseline 1.3 by more than 30%"} with input as inp
}

test_missing_ratio_denies if {
	inp := bench([{"name": "throughput", "ratio": null, "baseline": 0.65, "better": "higher", "tolerance": 0.2}])
	deny == {"perf: throughput has no ratio in this run (its workload failed)"} with input as inp
}

test_no_benches_denies if {
	deny == {"perf: the bench ran but reported no ratios"} with input as bench([])
}

test_no_bench_is_not_judged_fast_and_denies_full if {
	skipped := {"ran": false, "skipped": {"reason": "slow: runs in --full"}}
	not_run == {"bench": "slow: runs in --full"} with input as {"stage": "perf", "full": false, "checks": {"bench": skipped}}
	count(deny) == 0 with input as {"stage": "perf", "full": false, "checks": {"bench": skipped}}
	deny == {"perf: required check `bench` did not run in --full: slow: runs in --full"} with input as {"stage": "perf", "full": true, "checks": {"bench": skipped}}
}

# Stage 8, performance: each ratio of ArqonBus to nats-server's WebSocket listener, measured in the
# same run by `ci/bench.sh`, stays within its tolerance of the checked-in baseline of ratios
# (`ci/perf-baseline.json`). Absolute times are never compared: both sides share the machine.
package main

required_full := {"bench"}

deny contains msg if {
	some b in input.checks.bench.benches
	b.better == "higher"
	is_number(b.ratio)
	b.ratio < b.baseline * (1 - b.tolerance)
	msg := sprintf("perf: %s ratio %v is below its baseline %v by more than %v%%", [b.name, b.ratio, b.baseline, b.tolerance * 100])
}

deny contains msg if {
	some b in input.checks.bench.benches
	b.better == "lower"
	is_number(b.ratio)
	b.ratio > b.baseline * (1 + b.tolerance)
	msg := sprintf("perf: %s ratio %v is above its baseline %v by more than %v%%", [b.name, b.ratio, b.baseline, b.tolerance * 100])
}

# A workload that failed on either side has no ratio: nothing was judged, so it blocks.
deny contains msg if {
	some b in input.checks.bench.benches
	not is_number(b.ratio)
	msg := sprintf("perf: %s has no ratio in this run (its workload failed)", [b.name])
}

# A bench run that reported nothing judged nothing.
deny contains msg if {
	input.checks.bench.ran
	count(object.get(input.checks.bench, "benches", [])) == 0
	msg := "perf: the bench ran but reported no ratios"
}

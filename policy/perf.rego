# Stage 8, performance budgets: each benchmark's ratio to a baseline measured in the same run stays
# within its budget (perf/budget.toml). Absolute times from another machine are never compared.
package main

required_full := {"bench"}

deny contains msg if {
	some b in input.checks.bench.benches
	b.ratio > b.budget
	msg := sprintf("perf: %s is %v× its baseline, over the budget of %v×", [b.name, b.ratio, b.budget])
}

# Stage 12, deployment simulation: rolling restart with drain and a fast rollback.
package main

required_full := {"simulation"}

rollback_budget_ms := 10000

deny contains msg if {
	s := input.checks.simulation
	s.ran
	s.rollback_ms >= rollback_budget_ms
	msg := sprintf("deploy: rollback took %d ms, the budget is %d ms", [s.rollback_ms, rollback_budget_ms])
}

# A simulation that ran but measured no rollback judged nothing.
deny contains msg if {
	s := input.checks.simulation
	s.ran
	s.ok
	not is_number(s.rollback_ms)
	msg := "deploy: the simulation ran but reported no rollback_ms"
}

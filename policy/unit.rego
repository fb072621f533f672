# Stage 5, unit tests and coverage: tests pass, randomness is seeded, coverage meets the floor.
package main

required_full := {"seeds", "nextest", "coverage"}

line_floor := 85

deny contains msg if {
	some f in input.checks.seeds.findings
	msg := sprintf("unit: unseeded randomness in test code at %s (use a fixed seed)", [finding_text(f)])
}

deny contains msg if {
	c := input.checks.coverage
	c.ran
	c.line_percent < line_floor
	msg := sprintf("unit: line coverage of the core crates is %v%%, the floor is %d%%", [c.line_percent, line_floor])
}

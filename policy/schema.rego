# Stage 2, schema and state machines: buf (lint, format, breaking), generated state-machine docs,
# model checks and transition coverage. Tool failures are denied by common.rego.
package main

required_full := {"buf", "gen", "model", "transitions"}

deny contains msg if {
	t := input.checks.transitions
	t.ran
	t.covered < t.total
	msg := sprintf("schema: transition coverage %d/%d, ACES requires every transition", [t.covered, t.total])
}

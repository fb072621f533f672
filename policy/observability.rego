# Stage 10, observability: metric names follow arqonbus.<component>.<what>, logs never carry tokens,
# payloads or secrets, and the critical spans exist.
package main

required_full := {"metrics", "logs", "spans"}

deny contains msg if {
	some f in input.checks.metrics.bad
	msg := sprintf("observability: metric name `%s` at %s:%d does not follow arqonbus.<component>.<what>", [f.name, f.path, f.line])
}

deny contains msg if {
	some f in input.checks.logs.findings
	msg := sprintf("observability: a log macro at %s:%d records `%s`; tokens, payloads and secrets never go to logs", [f.path, f.line, f.var])
}

warn contains msg if {
	s := input.checks.spans
	s.ran
	count(s.names) == 0
	msg := "observability: no tracing span found in crates/ (connect, publish, fan-out should have one)"
}

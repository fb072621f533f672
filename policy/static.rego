# Stage 3, static analysis: formatting, clippy, cargo deny and the forbidden patterns.
package main

required_full := {"fmt", "forbidden", "clippy", "deny"}

deny contains msg if {
	some f in input.checks.forbidden.unwrap
	msg := sprintf("static: unwrap()/expect() outside tests at %s", [finding_text(f)])
}

deny contains msg if {
	some f in input.checks.forbidden.todo
	msg := sprintf("static: TODO/FIXME without an issue reference (#<n>) at %s", [finding_text(f)])
}

warn contains msg if {
	d := input.checks.deny
	d.ran
	not d.advisories_ran
	msg := "static: cargo deny ran without the RustSec advisories database"
}

# Rules shared by every ACES stage policy. The runner loads this file together with one
# `<stage>.rego`; both are `package main`, so their `deny` and `warn` rules add up (Conftest style).
# A stage policy names the checks that must run in the full tier in `required_full`.
package main

default required_full := set()

# A check that did not run, with its recorded reason.
not_run[name] := reason if {
	some name, check in input.checks
	not check.ran
	not check.error
	reason := object.get(check, ["skipped", "reason"], "no reason recorded")
}

# A required check that is absent from the facts did not run either.
not_run[name] := "no facts recorded" if {
	some name in required_full
	not input.checks[name]
}

# ACES: no stage may be skipped. In --full a required check that did not run blocks.
deny contains msg if {
	input.full
	some name, reason in not_run
	name in required_full
	msg := sprintf("%s: required check `%s` did not run in --full: %s", [input.stage, name, reason])
}

# Stage policies add their own warnings; this rule never holds and keeps `warn` defined when none does.
warn contains msg if {
	some msg in set()
}

# A check that did not run is not judged: the runner reads `not_run` and prints it as "not judged in
# this tier", and the stage cannot show as passed. It is not a warning that a reader may skim past.

# A tool that ran (or whose result file was read) and reported failure.
deny contains msg if {
	some name, check in input.checks
	check.ran
	check.ok == false
	msg := sprintf("%s: `%s` failed%s: %s", [input.stage, name, exit_text(check), object.get(check, "summary", "")])
}

exit_text(check) := sprintf(" (exit %d)", [check.exit_code]) if is_number(check.exit_code)

exit_text(check) := "" if not is_number(check.exit_code)

# A check that could not be carried out at all (unreadable input, tool crashed) fails closed.
deny contains msg if {
	some name, check in input.checks
	check.error
	msg := sprintf("%s: `%s` could not run: %s", [input.stage, name, check.error])
}

# Findings lists are judged the same way in every stage: one deny per finding.
finding_text(f) := sprintf("%s:%d: %s", [f.path, f.line, f.text])

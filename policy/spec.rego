# Stage 1, spec validation: every spec is complete, every AC is well formed and tested, and a change to
# the contract (proto/, crates/arqon-core/src) or a pull request points at a spec.
package main

required_full := {"sections", "ac_ids", "citations", "change"}

deny contains msg if {
	some f in input.checks.sections.files
	some section in f.missing
	msg := sprintf("spec: %s has no `## %s` section", [f.path, section])
}

deny contains msg if {
	some path in input.checks.ac_ids.without_acs
	msg := sprintf("spec: %s has no acceptance criteria (no `- **AC-<FEATURE>-<n>**:` line)", [path])
}

deny contains msg if {
	some m in input.checks.ac_ids.malformed
	msg := sprintf("spec: %s:%d: malformed AC ID `%s` (want AC-<FEATURE>-<n>)", [m.path, m.line, m.id])
}

deny contains msg if {
	some ac in input.checks.citations.uncited
	msg := sprintf("spec: %s (%s) is cited by no test under crates/, model/, sdk/ or fuzz/", [ac.id, ac.path])
}

deny contains msg if {
	change := input.checks.change
	change.ran
	count(change.contract_changed) > 0
	count(change.specs_cited) == 0
	msg := sprintf("spec: the change touches %s but changes or cites no spec (specs/<feature>.md)", [concat(", ", change.contract_changed)])
}

deny contains msg if {
	pr := input.checks.pr
	pr.ran
	count(pr.spec_links) == 0
	msg := sprintf("spec: the PR description %s links no spec (specs/<feature>.md)", [pr.path])
}

deny contains msg if {
	some link in input.checks.pr.spec_links
	not link.exists
	msg := sprintf("spec: the PR description links %s, which does not exist", [link.path])
}

deny contains msg if {
	some section in input.checks.pr.unfilled
	msg := sprintf("spec: the PR description leaves the required section `%s` unfilled", [section])
}

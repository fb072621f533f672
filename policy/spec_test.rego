# Tests for spec.rego.
package main

clean := {"stage": "spec", "full": true, "checks": {
	"sections": {"ran": true, "files": []},
	"ac_ids": {"ran": true, "total": 3, "without_acs": [], "malformed": []},
	"citations": {"ran": true, "total": 3, "uncited": []},
	"change": {"ran": true, "contract_changed": ["proto/arqon/v1/envelope.proto"], "specs_cited": ["specs/protocol.md"]},
	"pr": {"ran": true, "path": "pr.md", "spec_links": [{"path": "specs/protocol.md", "exists": true}], "unfilled": []},
}}

test_clean_spec_facts_pass if {
	count(deny) == 0 with input as clean
	count(warn) == 0 with input as clean
}

test_missing_section_denies if {
	inp := object.union(clean, {"checks": {"sections": {"files": [{"path": "specs/x.md", "missing": ["Acceptance criteria"]}]}}})
	deny == {"spec: specs/x.md has no `## Acceptance criteria` section"} with input as inp
}

test_spec_without_acs_denies if {
	inp := object.union(clean, {"checks": {"ac_ids": {"without_acs": ["specs/x.md"]}}})
	"spec: specs/x.md has no acceptance criteria (no `- **AC-<FEATURE>-<n>**:` line)" in deny with input as inp
}

test_malformed_and_uncited_acs_deny if {
	inp := object.union(clean, {"checks": {"ac_ids": {"malformed": [{"path": "specs/x.md", "line": 9, "id": "AC-x-1"}]}, "citations": {"uncited": [{"id": "AC-X-2", "path": "specs/x.md"}]}}})
	d := deny with input as inp
	"spec: specs/x.md:9: malformed AC ID `AC-x-1` (want AC-<FEATURE>-<n>)" in d
	"spec: AC-X-2 (specs/x.md) is cited by no test under crates/, model/, sdk/ or fuzz/" in d
}

test_contract_change_without_spec_denies if {
	inp := object.union(clean, {"checks": {"change": {"specs_cited": []}}})
	deny == {"spec: the change touches proto/arqon/v1/envelope.proto but changes or cites no spec (specs/<feature>.md)"} with input as inp
}

test_pr_without_spec_or_with_unfilled_section_denies if {
	inp := object.union(clean, {"checks": {"pr": {"spec_links": [], "unfilled": ["Testing"]}}})
	deny == {
		"spec: the PR description pr.md links no spec (specs/<feature>.md)",
		"spec: the PR description leaves the required section `Testing` unfilled",
	} with input as inp
}

test_pr_link_to_missing_spec_denies if {
	inp := object.union(clean, {"checks": {"pr": {"spec_links": [{"path": "specs/nope.md", "exists": false}]}}})
	deny == {"spec: the PR description links specs/nope.md, which does not exist"} with input as inp
}

test_no_base_is_not_judged_fast_and_denies_full if {
	skipped := {"ran": false, "skipped": {"reason": "no --base given"}}
	fast := object.union(clean, {"full": false, "checks": {"change": skipped}})
	full := object.union(clean, {"checks": {"change": skipped}})
	not_run.change == "no --base given" with input as fast
	count(deny) == 0 with input as fast
	deny == {"spec: required check `change` did not run in --full: no --base given"} with input as full
}

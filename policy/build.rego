# Stage 4, build and artifact consistency: the release binary built twice has one hash.
package main

required_full := {"repro"}

deny contains msg if {
	r := input.checks.repro
	r.ran
	count({h | some h in r.hashes}) > 1
	msg := sprintf("build: the %s binary is not reproducible: %s", [object.get(r, "binary", "arq"), concat(" != ", r.hashes)])
}

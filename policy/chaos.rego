# Stage 9, chaos and adversarial: fuzz targets (time-boxed), floods and fault injection.
# A failing run is denied by common.rego; here only what cannot be seen from an exit code.
package main

required_full := {"fuzz"}

deny contains msg if {
	f := input.checks.fuzz
	f.ran
	count(object.get(f, "crashes", [])) > 0
	msg := sprintf("chaos: fuzzing found crashes: %s", [concat(", ", f.crashes)])
}

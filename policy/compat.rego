# Stage 11, compatibility: a golden vector for every message, no breaking proto change, and old
# clients against the new server.
package main

required_full := {"golden", "buf", "old_client"}

deny contains msg if {
	some m in input.checks.golden.missing
	msg := sprintf("compat: message %s has no golden vector in golden/", [m])
}

# Stage 7, security: no secrets in the tree or the change, TLS in every non-dev config, and the JWT
# attack and fail-closed suites pass.
package main

required_full := {"secrets", "history", "tls", "suites"}

deny contains msg if {
	some f in input.checks.secrets.findings
	msg := sprintf("security: %s candidate at %s:%d (%s…); remove it or allowlist the path in policy/secrets_allow.txt", [f.kind, f.path, f.line, f.excerpt])
}

deny contains msg if {
	some f in input.checks.history.findings
	msg := sprintf("security: %s candidate added in %s (%s:%d, %s…)", [f.kind, f.commit, f.path, f.line, f.excerpt])
}

warn contains msg if {
	some entry in input.checks.secrets.unused_allow
	msg := sprintf("security: allowlist entry `%s` matches no finding; remove it", [entry])
}

deny contains msg if {
	some c in input.checks.tls.configs
	not c.dev
	not c.tls
	msg := sprintf("security: %s is not a dev config and does not enable TLS (%s)", [c.path, c.why])
}

# Tests for security.rego.
package main

ok := {"ran": true, "ok": true, "exit_code": 0}

clean := {"stage": "security", "full": true, "checks": {
	"secrets": {"ran": true, "findings": [], "unused_allow": []},
	"history": {"ran": true, "findings": []},
	"tls": {"ran": true, "configs": [{"path": "deploy/arqon.toml", "dev": false, "tls": true, "why": ""}, {"path": "deploy/arqon.dev.toml", "dev": true, "tls": false, "why": "no [tls] table"}]},
	"suites": ok,
}}

test_clean_security_passes if {
	count(deny) == 0 with input as clean
	count(warn) == 0 with input as clean
}

test_secret_in_tree_denies_without_the_secret if {
	inp := object.union(clean, {"checks": {"secrets": {"findings": [{"path": "crates/a/src/k.rs", "line": 2, "kind": "aws-access-key", "excerpt": "AKIA"}]}}})
	deny == {"security: aws-access-key candidate at crates/a/src/k.rs:2 (AKIA…); remove it or allowlist the path in policy/secrets_allow.txt"} with input as inp
}

test_secret_in_history_denies if {
	inp := object.union(clean, {"checks": {"history": {"findings": [{"commit": "abc123", "path": "x.toml", "line": 1, "kind": "password-in-config", "excerpt": "pass"}]}}})
	deny == {"security: password-in-config candidate added in abc123 (x.toml:1, pass…)"} with input as inp
}

test_non_dev_config_without_tls_denies if {
	inp := object.union(clean, {"checks": {"tls": {"configs": [{"path": "deploy/arqon.toml", "dev": false, "tls": false, "why": "no [tls] table"}]}}})
	deny == {"security: deploy/arqon.toml is not a dev config and does not enable TLS (no [tls] table)"} with input as inp
}

test_stale_allowlist_entry_warns if {
	inp := object.union(clean, {"checks": {"secrets": {"unused_allow": ["old/fixture.pem"]}}})
	warn == {"security: allowlist entry `old/fixture.pem` matches no finding; remove it"} with input as inp
}

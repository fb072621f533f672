# Tests for deploy.rego.
package main

test_fast_rollback_passes if {
	count(deny) == 0 with input as {"stage": "deploy", "full": true, "checks": {"simulation": {"ran": true, "ok": true, "rollback_ms": 4200}}}
}

test_slow_rollback_denies if {
	d := deny with input as {"stage": "deploy", "full": false, "checks": {"simulation": {"ran": true, "ok": true, "rollback_ms": 12000}}}
	d == {"deploy: rollback took 12000 ms, the budget is 10000 ms"}
}

test_simulation_without_rollback_figure_denies if {
	d := deny with input as {"stage": "deploy", "full": false, "checks": {"simulation": {"ran": true, "ok": true}}}
	d == {"deploy: the simulation ran but reported no rollback_ms"}
}

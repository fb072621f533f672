# Stage 6, integration and topology: a real NATS cluster with several ArqonBus nodes.
package main

required_full := {"nats", "topology"}

deny contains msg if {
	t := input.checks.topology
	t.ran
	t.tests_run == 0
	msg := "integration: no topology test ran (test names containing `topology` or `cluster`)"
}

deny contains msg if {
	input.full
	n := input.checks.nats
	n.ran
	not n.present
	msg := "integration: nats-server is not installed, the topology tests cannot run"
}

#!/usr/bin/env bash
# ACES stage 12 (deploy): the deploy simulation. Three `arq serve` processes on a nats-server of their
# own behind a round-robin TCP balancer are restarted one after another with SIGTERM while 31 clients
# stay in one room (crates/arq/tests/it/deploy_sim.rs, specs/deploy.md). Prints each restart and, last,
# the figures the deploy policy judges as one JSON line (rollback_ms: the slowest restart to ready).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! out=$(cargo nextest run --locked -p arq -E 'test(/deploy_simulation/)' --no-capture 2>&1); then
  echo "$out" | tail -40
  exit 1
fi
echo "$out" | grep -E '^restart [0-9]+:' || true
line=$(echo "$out" | grep '^DEPLOY_SIM ' | tail -1 || true)
if [ -z "$line" ]; then
  echo "error: the deploy simulation printed no DEPLOY_SIM line" >&2
  exit 1
fi
echo "${line#DEPLOY_SIM }"

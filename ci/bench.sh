#!/usr/bin/env bash
# ACES stage 8 (perf): a short fixed arqon-bench profile (`ci`) against an ArqonBus node and
# nats-server's WebSocket listener in the same run; the last line printed is the JSON the perf policy
# judges: each ratio beside its baseline in ci/perf-baseline.json. Needs a release build, so it runs in
# the full tier (`cargo xtask ci --full`), not in ./ci/test.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p arq -p arqon-bench
mkdir -p target/bench
echo "load average before the run: $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/arqon-bench --profile ci --arq target/release/arq \
  --json target/bench/ci.json --baseline ci/perf-baseline.json

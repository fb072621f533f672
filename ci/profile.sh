#!/usr/bin/env bash
# CPU profile of `arq serve` under one arqon-bench throughput run (`--only throughput --targets
# arqonbus`, the full profile's fan-outs 10, 100 and 1000): perf samples the node for 3 s in each
# fan-out, then each recording becomes a folded stack file, a flamegraph (SVG) and a per-layer table
# (docs/perf/layers.py). Output in target/perf/. Needs perf (Debian linux-perf) and inferno
# (`cargo install inferno`, installed here when missing). Not part of ./ci/test.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v perf >/dev/null || { echo "perf is not installed (apt-get install linux-perf)" >&2; exit 1; }
command -v inferno-flamegraph >/dev/null || cargo install --locked inferno
cargo build --release --locked -p arq -p arqon-bench
out=target/perf
mkdir -p "$out"
label=${1:-$(git rev-parse --short HEAD)}
log="$out/bench-$label.txt"
target/release/arqon-bench --profile full --only throughput --targets arqonbus >"$log" 2>&1 &
bench=$!
for _ in $(seq 1 200); do grep -q " pid " "$log" 2>/dev/null && break; sleep 0.05; done
pid=$(awk '/ pid /{print $3; exit}' "$log")
# The three fan-outs run 5 s each, one after another; sample the middle 3 s of each.
for fanout in 10 100 1000; do
  sleep 1
  perf record -q -F 999 -g --call-graph dwarf,32768 -p "$pid" -o "$out/$fanout.data" -- sleep 3
  sleep 1
  while ! grep -q "to $fanout subscribers" "$log"; do sleep 0.2; done
done
wait "$bench"
for fanout in 10 100 1000; do
  perf script -i "$out/$fanout.data" 2>/dev/null | inferno-collapse-perf >"$out/throughput-$fanout-$label.folded"
  inferno-flamegraph --minwidth 0.2 --title "arq serve, arqon-bench throughput, fan-out $fanout ($label)" \
    "$out/throughput-$fanout-$label.folded" >"$out/throughput-$fanout-$label.svg"
  echo "== fan-out $fanout"
  python3 docs/perf/layers.py "$out/throughput-$fanout-$label.folded"
done
grep -E "throughput|cpu" "$log"

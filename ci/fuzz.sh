#!/usr/bin/env bash
# Fuzz smoke: runs every target in fuzz/fuzz_targets/ for a time box, seeded from the golden vectors
# (golden/vectors/*.snap) and any committed seeds in fuzz/corpus/<target>/. Fails on any crash;
# the crashing input lands in fuzz/artifacts/<target>/.
#
# Usage: ci/fuzz.sh                    20 s per target (the CI smoke)
#        FUZZ_SECONDS=600 ci/fuzz.sh   a longer run
#        ARQON_FULL=1 ci/fuzz.sh       300 s per target unless FUZZ_SECONDS says otherwise
# Needs the nightly toolchain (sanitizers); installs cargo-fuzz when it is missing. The fuzz crate
# builds into its own target dir, fuzz/target, where the working corpus lives too (gitignored).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [ "${ARQON_FULL:-0}" = 1 ]; then default_seconds=300; else default_seconds=20; fi
seconds=${FUZZ_SECONDS:-$default_seconds}

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

seeds="$root/fuzz/target/seeds/golden"
rm -rf "$seeds"
mkdir -p "$seeds"
# Each vector is an insta snapshot: a `---` header, then JSON with the encoding in "hex".
python3 - "$root/golden/vectors" "$seeds" <<'PY'
import json, pathlib, sys
source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
count = 0
for snap in sorted(source.glob("*.snap")):
    doc = json.loads(snap.read_text().split("---\n", 2)[2])
    (out / snap.stem).write_bytes(bytes.fromhex(doc["hex"]))
    count += 1
if count == 0:
    sys.exit("no golden vectors found")
print(f"{count} golden vectors as seeds")
PY

targets=()
for file in "$root"/fuzz/fuzz_targets/*.rs; do
  targets+=("$(basename "$file" .rs)")
done
echo "fuzz targets: ${targets[*]} (${seconds}s each)"

for target in "${targets[@]}"; do
  corpus="$root/fuzz/target/corpus/$target"
  mkdir -p "$corpus"
  cp "$seeds"/* "$corpus/"
  if [ -d "$root/fuzz/corpus/$target" ]; then
    cp "$root/fuzz/corpus/$target"/* "$corpus/" 2>/dev/null || true
  fi
  echo "==> fuzz $target"
  cargo +nightly fuzz run --fuzz-dir "$root/fuzz" "$target" "$corpus" -- \
    -max_total_time="$seconds" -max_len=8192 -print_final_stats=1
done
echo "fuzz: all targets ran clean"

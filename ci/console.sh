#!/usr/bin/env bash
# The admin console in a real browser (specs/console.md, AC-CONSOLE-1 and AC-CONSOLE-6..10): a real
# `arq serve --dev` node, Debian's chromium driven by playwright-core (no browser download), real
# WebSocket clients from the Python SDK, a real Wasm policy and a real tampered audit file.
# Installs what it needs: chromium (apt-get) when missing, the npm deps from the checked-in lock, and a
# venv with the Python SDK's runtime deps at the versions sdk/python pins. Time-boxed.
#
# Usage: ci/console.sh             run the browser tests
#        ci/console.sh --screens   the same, and rewrite docs/console/*.png from the run (commit them)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tests=crates/arqon-console/tests/browser

bash ci/chromium.sh

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$tests" && timeout 300 npm ci --silent --no-audit --no-fund)

venv=target/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# Only the SDK's runtime deps, pinned where the SDK pins them (ci/python.sh adds its dev tools).
mapfile -t pins < <(grep -E '^(protobuf|websockets)==' sdk/python/requirements-dev.txt)
"$venv/bin/pip" install --quiet --disable-pip-version-check "${pins[@]}"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e sdk/python

if [ -z "${ARQ_BIN:-}" ]; then
  cargo build --quiet --locked -p arq
  ARQ_BIN="$root/target/debug/arq"
fi
export ARQ_BIN ARQON_PYTHON="$root/$venv/bin/python" CHROMIUM="$(command -v chromium)"
if [ "${1:-}" = "--screens" ]; then
  export ARQON_CONSOLE_SCREENS=1
fi
(cd "$tests" && timeout 300 node --test --test-concurrency=1 console.test.mjs)
if [ "${ARQON_CONSOLE_SCREENS:-}" = 1 ]; then
  ls -1 docs/console/*.png
fi

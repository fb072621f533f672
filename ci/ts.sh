#!/usr/bin/env bash
# The TypeScript SDK (sdk/ts, specs/sdk-ts.md): npm ci from the checked-in lock, the protobuf drift check,
# the build (tsc + the esbuild browser bundle), then unit tests, integration tests against real `arq`
# nodes on both spines (a private nats-server each), and the chat example in headless Chromium
# (Debian's, installed by ci/chromium.sh; playwright-core downloads no browser). Each step is time-boxed.
#   ARQ_BIN=path   use this arq binary instead of building target/debug/arq
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
pkg=sdk/ts

started=$(date +%s)
step() { printf -- '--> [%4ss] ts: %s\n' "$(( $(date +%s) - started ))" "$*"; }

step "chromium"
bash ci/chromium.sh

step "npm ci"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
(cd "$pkg" && timeout 300 npm ci --silent --no-audit --no-fund)

step "gen:check (src/gen against proto/)"
(cd "$pkg" && timeout 120 npm run --silent gen:check)

step "build"
(cd "$pkg" && timeout 180 npm run --silent build && timeout 180 npm run --silent build:test)

if [ -z "${ARQ_BIN:-}" ]; then
  cargo build --quiet --locked -p arq
  ARQ_BIN="$root/target/debug/arq"
fi
export ARQ_BIN NATS_SERVER="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}" CHROMIUM="$(command -v chromium)"

step "unit tests"
(cd "$pkg" && timeout 180 npm run --silent test:unit)

step "integration tests (embedded and NATS spines)"
(cd "$pkg" && timeout 300 npm run --silent test:integration)

step "browser tests (headless Chromium)"
(cd "$pkg" && timeout 180 npm run --silent test:browser)

step "done"

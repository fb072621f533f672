#!/usr/bin/env bash
# Installs Debian's chromium (apt-get) when it is missing, for the headless browser tests (ci/console.sh, ci/ts.sh).
# Playwright-core drives it through an explicit executable path; no browser is ever downloaded.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium (apt-get)"
  timeout 600 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq chromium >/dev/null
fi
chromium --version

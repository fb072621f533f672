#!/usr/bin/env bash
# The Python SDK's checks: a venv with pinned tools, generated-code drift, then pytest against real nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=target/venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r sdk/python/requirements-dev.txt
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -e sdk/python
"$venv/bin/python" sdk/python/tools/gen_proto.py --check
# The flows run against the real `arq` binary: ARQ_BIN when given (ci/test passes the one its test
# build made), else built once in the shared target dir.
if [ -z "${ARQ_BIN:-}" ]; then
  cargo build --quiet --locked -p arq
  ARQ_BIN="$PWD/target/debug/arq"
fi
export ARQ_BIN
set +e
(cd sdk/python && "../../$venv/bin/python" -m pytest -q -p no:cacheprovider)
rc=$?
set -e
# pytest exits 5 when it collected no test: that is a failure here, not a pass.
if [ "$rc" -ne 0 ]; then
  echo "Python SDK tests failed (pytest exit $rc)" >&2
  exit "$rc"
fi

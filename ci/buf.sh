#!/usr/bin/env bash
# The wire contract's guards (specs/protocol.md, AC-PROTOCOL-1 and AC-PROTOCOL-2):
#   buf lint (STANDARD), buf format --diff --exit-code, and buf breaking (FILE) against the
#   committed baseline image golden/proto-baseline.binpb, plus a proof that buf breaking has teeth:
#   a copy of proto/ with one renamed field must FAIL against the same baseline.
# buf comes from npm (@bufbuild/buf, pinned below) into target/tools/buf; it is installed once.
#
# Usage: ci/buf.sh                      run every check
#        ci/buf.sh --refresh-baseline   rewrite the baseline from proto/. Only for a deliberate new
#                                       MAJOR (a new package arqon.v2 beside v1, see specs/protocol.md);
#                                       within v1 the baseline never changes, so every v1 change must
#                                       stay additive. Commit the new baseline with the change.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

BUF_VERSION=1.75.0
tools="$root/target/tools/buf"
buf="$tools/node_modules/.bin/buf"
baseline="$root/golden/proto-baseline.binpb"

if [ ! -x "$buf" ] || [ "$("$buf" --version 2>/dev/null)" != "$BUF_VERSION" ]; then
  echo "installing @bufbuild/buf@$BUF_VERSION into $tools"
  npm install --silent --no-audit --no-fund --prefix "$tools" "@bufbuild/buf@$BUF_VERSION"
fi

cd "$root/proto"

if [ "${1:-}" = "--refresh-baseline" ]; then
  "$buf" build --exclude-source-info -o "$baseline"
  echo "baseline written to $baseline; commit it together with the MAJOR change"
  exit 0
fi

echo "buf lint"
"$buf" lint

echo "buf format --diff --exit-code"
"$buf" format --diff --exit-code

echo "buf breaking --against golden/proto-baseline.binpb"
"$buf" breaking --against "$baseline"

echo "buf breaking has teeth: a renamed field must fail"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cp -R "$root/proto/." "$scratch/proto"
# Rename Publish.room to Publish.room_name: same tag and type, a breaking change under FILE rules.
sed -i '/^message Publish {/,/^}/ s/string room = 1;/string room_name = 1;/' \
  "$scratch/proto/arqon/v1/session.proto"
if cmp -s "$root/proto/arqon/v1/session.proto" "$scratch/proto/arqon/v1/session.proto"; then
  echo "FAIL: the teeth check could not rename Publish.room; update ci/buf.sh" >&2
  exit 1
fi
if "$buf" breaking "$scratch/proto" --against "$baseline" >"$scratch/breaking.txt" 2>&1; then
  echo "FAIL: buf breaking accepted a renamed field" >&2
  exit 1
fi
if ! grep -q 'room' "$scratch/breaking.txt"; then
  echo "FAIL: buf breaking failed, but not on the renamed field:" >&2
  cat "$scratch/breaking.txt" >&2
  exit 1
fi
sed 's/^/  (expected) /' "$scratch/breaking.txt"
echo "buf: all checks passed"

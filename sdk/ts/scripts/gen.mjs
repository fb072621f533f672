// Generates src/gen from proto/ with buf + protoc-gen-es; `--check` generates into a temp dir and fails on drift.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
// `--proto DIR` checks against another copy of proto/ (the drift test uses a changed one).
const protoAt = process.argv.indexOf('--proto');
const PROTO = protoAt > 0 ? resolve(process.argv[protoAt + 1]) : resolve(PKG, '../../proto');
const COMMITTED = join(PKG, 'src/gen');
const BUF = join(PKG, 'node_modules/.bin/buf');

/** Runs `buf generate` of proto/ into `out` (a directory that replaces src/gen). */
function generate(out) {
  const run = spawnSync(BUF, ['generate', PROTO, '--template', join(PKG, 'buf.gen.yaml'), '--output', out], {
    cwd: PKG,
    encoding: 'utf8',
  });
  if (run.status !== 0) {
    process.stderr.write(run.stdout + run.stderr);
    process.exit(run.status ?? 1);
  }
}

/** Every file under `dir`, as paths relative to it. */
function files(dir) {
  if (!existsSync(dir)) return [];
  const found = [];
  const walk = (at) => {
    for (const name of readdirSync(at)) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else found.push(relative(dir, path));
    }
  };
  walk(dir);
  return found.sort();
}

if (process.argv.includes('--check')) {
  const scratch = mkdtempSync(join(tmpdir(), 'arqon-ts-gen-'));
  try {
    generate(scratch);
    const fresh = join(scratch, 'src/gen');
    const want = files(fresh);
    const have = files(COMMITTED);
    const drift = [
      ...want.filter((f) => !have.includes(f)).map((f) => `missing: src/gen/${f}`),
      ...have.filter((f) => !want.includes(f)).map((f) => `not generated from proto/: src/gen/${f}`),
      ...want
        .filter((f) => have.includes(f))
        .filter((f) => readFileSync(join(fresh, f), 'utf8') !== readFileSync(join(COMMITTED, f), 'utf8'))
        .map((f) => `differs: src/gen/${f}`),
    ];
    if (drift.length > 0) {
      console.error(`src/gen drifted from proto/ (run \`npm run gen\` and commit):\n  ${drift.join('\n  ')}`);
      process.exit(1);
    }
    console.log(`gen:check: src/gen matches proto/ (${want.length} files)`);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
} else {
  rmSync(COMMITTED, { recursive: true, force: true });
  generate(PKG);
  console.log(`generated ${files(COMMITTED).length} files into src/gen`);
}

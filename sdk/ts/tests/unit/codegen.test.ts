// The committed src/gen matches proto/, and the drift check fails once proto/ changes without regeneration (AC-SDKTS-10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, SDK } from '../helpers/paths.js';

const check = (...extra: string[]) => spawnSync(process.execPath, [join(SDK, 'scripts/gen.mjs'), '--check', ...extra], { cwd: SDK, encoding: 'utf8' });

test('AC-SDKTS-10: gen:check passes on the committed code', () => {
  const run = check();
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.stdout, /src\/gen matches proto\/ \(4 files\)/);
});

test('AC-SDKTS-10: gen:check fails after proto/ changes without regeneration', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'arqon-ts-drift-'));
  try {
    cpSync(join(ROOT, 'proto'), scratch, { recursive: true });
    const session = join(scratch, 'arqon/v1/session.proto');
    const text = readFileSync(session, 'utf8');
    const changed = text.replace('message Ping {\n', 'message Ping {\n  // A new field.\n  string note = 2;\n');
    assert.notEqual(changed, text, 'the test could not change Ping');
    writeFileSync(session, changed);
    const run = check('--proto', scratch);
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.match(run.stderr, /differs: src\/gen\/arqon\/v1\/session_pb\.ts/);
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});

// The built package as an app sees it: `arqon-sdk` and `arqon-sdk/governance` by name, the README's quickstart against a real node, and a browser bundle whose core does not carry governance (AC-SDKTS-13).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Bus } from '../helpers/bus.js';
import { SDK } from '../helpers/paths.js';

const bus = new Bus('embedded');
before(() => bus.start());
after(() => bus.stop());

test('AC-SDKTS-13: the package exports resolve by name to the built ESM with the documented API', async () => {
  // Run from inside sdk/ts, where Node resolves the package's own name through its `exports`.
  const probe = `
    const sdk = await import('arqon-sdk');
    const gov = await import('arqon-sdk/governance');
    console.log(JSON.stringify({ sdk: Object.keys(sdk).sort(), gov: Object.keys(gov).sort() }));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: SDK, encoding: 'utf8' });
  assert.equal(run.status, 0, run.stderr);
  const { sdk, gov } = JSON.parse(run.stdout) as { sdk: string[]; gov: string[] };
  for (const name of ['connect', 'Client', 'RoomCursor', 'ArqonError', 'AuthError', 'ConnectionClosed', 'InvalidRoom', 'NotInRoom', 'RoomLimit', 'PayloadTooLarge', 'RateLimited', 'PolicyBlocked', 'TokenRefused', 'Forbidden', 'ServerDraining', 'GovernanceRefused', 'ProtocolRefused', 'ProtocolError', 'HistoryUnavailable', 'ServerError', 'Unavailable']) {
    assert.ok(sdk.includes(name), `arqon-sdk exports ${name}`);
  }
  for (const name of ['GovernanceClient', 'proposalDigest', 'verifyApproval', 'DigestMismatch']) assert.ok(gov.includes(name), `arqon-sdk/governance exports ${name}`);
  assert.ok(!sdk.includes('proposalDigest'), 'governance stays out of the core entry');
});

test("AC-SDKTS-13: the README's quickstart runs unchanged against a real node", () => {
  const run = spawnSync(process.execPath, [join(SDK, 'examples/quickstart.mjs')], {
    cwd: SDK,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, ARQON_URL: bus.url, ARQON_TOKEN: bus.token('quick') },
  });
  assert.equal(run.status, 0, run.stderr);
  const lines = run.stdout.trim().split('\n');
  assert.equal(lines[0], 'connected as quick of acme');
  assert.ok(lines.includes('quick: hello from TypeScript'), run.stdout);
  assert.ok(lines.some((l) => /^delivered at offset [1-9]\d*$/.test(l)), run.stdout);
  assert.ok(lines.includes('refused: ERROR_CODE_INVALID_ROOM'), run.stdout);
  assert.ok(lines.includes('blocked: ERROR_CODE_POLICY_BLOCKED'), run.stdout);
  assert.equal(lines.at(-1), 'members: quickstart');
  const readme = readFileSync(join(SDK, 'README.md'), 'utf8');
  const body = readFileSync(join(SDK, 'examples/quickstart.mjs'), 'utf8').split('\n').slice(1).join('\n');
  assert.ok(readme.includes(body), 'the README shows examples/quickstart.mjs as it is');
});

test('AC-SDKTS-13: the browser bundle keeps governance in its own chunk', () => {
  const dir = join(SDK, 'dist/browser');
  const files = readdirSync(dir).filter((f) => f.endsWith('.js'));
  const core = files.filter((f) => f !== 'governance.js');
  assert.ok(files.includes('arqon.js') && files.includes('governance.js'), files.join(', '));
  const digestDomain = 'arqon.proposal.v1';
  for (const f of core) assert.ok(!readFileSync(join(dir, f), 'utf8').includes(digestDomain), `${f} carries the governance digest`);
  assert.ok(readFileSync(join(dir, 'governance.js'), 'utf8').includes(digestDomain));
});

// Paths the tests share: the repository root, the arq binary, nats-server, the policy fixture.
import { dirname, join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root, found upwards from the compiled or the source test file. */
export const ROOT = (() => {
  let dir = here;
  while (!existsSync(join(dir, 'golden/vectors'))) {
    const up = resolve(dir, '..');
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
})();
export const SDK = join(ROOT, 'sdk/ts');
export const ARQ = process.env.ARQ_BIN ?? join(ROOT, 'target/debug/arq');
export const NATS_SERVER = process.env.NATS_SERVER ?? '/usr/sbin/nats-server';
export const BAD_WORDS = join(ROOT, 'crates/arqon-policy/fixtures/bad_words.wat');

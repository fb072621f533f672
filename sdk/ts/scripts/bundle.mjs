// Bundles the SDK for browsers with esbuild: dist/browser/arqon.js (ESM), used by the example page and the browser test.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const PKG = resolve(dirname(fileURLToPath(import.meta.url)), '..');
rmSync(join(PKG, 'dist/browser'), { recursive: true, force: true }); // no stale chunks
await build({
  entryPoints: { arqon: join(PKG, 'src/index.ts'), governance: join(PKG, 'src/governance.ts') },
  outdir: join(PKG, 'dist/browser'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
});
console.log('bundled dist/browser/arqon.js');

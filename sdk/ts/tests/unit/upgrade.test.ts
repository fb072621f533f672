// A refused upgrade through the real `ws` package against a local HTTP server: 401 -> AuthError, 503 -> Unavailable with Retry-After (AC-SDKTS-1, AC-SDKTS-5).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { AuthError, connect, ConnectionClosed, Unavailable } from '../../src/index.js';

let server: Server;
let base = '';
const seen: string[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push(String(req.headers['sec-websocket-protocol'] ?? ''));
    if (req.url?.startsWith('/busy')) res.writeHead(503, { 'retry-after': '2' }).end('draining');
    else if (req.url?.startsWith('/teapot')) res.writeHead(418).end();
    else res.writeHead(401).end('token refused');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  base = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

after(() => new Promise<void>((resolve) => server.close(() => resolve())));

test('AC-SDKTS-1: HTTP 401 before the upgrade rejects with AuthError (Node sees the status); the token was offered as a subprotocol', async () => {
  await assert.rejects(connect(`${base}/v1/socket`, 'tok.en.x', { reconnect: false }), (e: unknown) => e instanceof AuthError && e.status === 401 && e.body === 'token refused');
  assert.deepEqual(seen.at(-1)?.split(',').map((p) => p.trim()), ['arqon.v1.batch', 'bearer.tok.en.x']);
});

test("AC-SDKTS-5: HTTP 503 rejects with Unavailable carrying the Retry-After; another status is an ArqonError", async () => {
  await assert.rejects(connect(`${base}/busy`, 't'), (e: unknown) => e instanceof Unavailable && e.retryAfterMs === 2000);
  await assert.rejects(connect(`${base}/teapot`, 't'), (e: unknown) => e instanceof Error && /HTTP 418/.test(e.message) && !(e instanceof ConnectionClosed));
});

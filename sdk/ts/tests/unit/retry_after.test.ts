// A reconnect waits out a 503's Retry-After: a scripted server built on the real `ws` package drops the session, refuses the next upgrade with 503, then accepts (AC-SDKTS-5).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { create, toBinary } from '@bufbuild/protobuf';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { EnvelopeSchema, HeaderSchema } from '../../src/gen/arqon/v1/envelope_pb.js';
import { WelcomeSchema } from '../../src/gen/arqon/v1/session_pb.js';
import { connect } from '../../src/index.js';
import { nextEvent } from '../helpers/bus.js';

let server: Server;
let url = '';
/** When each upgrade request arrived, and what was answered. */
const attempts: { at: number; answer: 'accepted' | '503' }[] = [];
const sessions: WebSocket[] = [];
const wss = new WebSocketServer({ noServer: true, handleProtocols: () => 'arqon.v1.batch' });

function welcome(n: number): Uint8Array {
  const body = { case: 'welcome' as const, value: create(WelcomeSchema, { sessionId: `s-${n}`, userId: 'alice', tenantId: 'acme', heartbeatIntervalMs: 15_000 }) };
  return toBinary(EnvelopeSchema, create(EnvelopeSchema, { header: create(HeaderSchema, { protocolVersion: 1 }), body }));
}

before(async () => {
  server = createServer();
  server.on('upgrade', (req, socket: Duplex, head) => {
    // The second upgrade is refused as a full node would: 503 with Retry-After: 1.
    if (attempts.length === 1) {
      attempts.push({ at: Date.now(), answer: '503' });
      socket.end('HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    attempts.push({ at: Date.now(), answer: 'accepted' });
    wss.handleUpgrade(req, socket, head, (ws) => {
      sessions.push(ws);
      ws.send(welcome(attempts.length));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  url = `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/v1/socket`;
});

after(async () => {
  for (const ws of sessions) ws.terminate();
  wss.close();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

test("AC-SDKTS-5: after a 503 with Retry-After: 1 the next attempt waits at least 1 s (the backoff alone would be 100 ms)", async () => {
  const client = await connect(url, 'a.b.c', { seed: 9, backoff: { initialMs: 50, maxMs: 5_000 } });
  const back = nextEvent(client, 'connected', 10_000);
  (sessions[0] as WebSocket).terminate(); // the session drops: attempt 0 gets the 503, attempt 1 must wait it out
  const welcome = await back;
  assert.equal(welcome.sessionId, 's-3');
  assert.deepEqual(attempts.map((a) => a.answer), ['accepted', '503', 'accepted']);
  const waited = (attempts[2]?.at ?? 0) - (attempts[1]?.at ?? 0);
  assert.ok(waited >= 1_000, `the retry came ${waited} ms after the 503`);
  assert.ok(waited < 2_500, `and not much later (jitter is at most 50 %): ${waited} ms`);
  assert.equal(client.reconnects, 1);
  client.close();
});

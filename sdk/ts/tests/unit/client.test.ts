// The client's logic against a scripted fake socket: the token's subprotocol, reply matching, uncorrelated errors, Drain, final close codes, rejoin with positions, duplicates, refresh, heartbeats, no token in logs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { create } from '@bufbuild/protobuf';
import { ErrorCode, ErrorSchema, MessageSchema, PongSchema, RecoverySchema, DrainSchema, PositionSchema } from '../../src/gen/arqon/v1/session_pb.js';
import { BatchSchema, EnvelopeSchema } from '../../src/gen/arqon/v1/envelope_pb.js';
import type { Envelope } from '../../src/gen/arqon/v1/envelope_pb.js';
import { connect, ConnectionClosed, InvalidRoom, PolicyBlocked, RateLimited } from '../../src/index.js';
import type { Logger } from '../../src/index.js';
import { FakeServer, FakeSocket, fakeJwt } from '../helpers/fake.js';
import { nextEvent } from '../helpers/bus.js';

const TOKEN = fakeJwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });

function error(code: ErrorCode, correlationId = '', retryAfterMs = 0): Envelope['body'] {
  return { case: 'error', value: create(ErrorSchema, { code, message: 'no', correlationId, retryAfterMs }) };
}

function message(room: string, text: string, offset: bigint, epoch = 'e1'): Envelope['body'] {
  return { case: 'message', value: create(MessageSchema, { room, payload: new TextEncoder().encode(text), contentType: 'text/plain', offset, epoch }) };
}

function recovery(room: string, count: number, offset: bigint, epoch = 'e1'): Envelope['body'] {
  return {
    case: 'recovery',
    value: create(RecoverySchema, { room, recovered: count > 0, count, position: create(PositionSchema, { offset, epoch }) }),
  };
}

/** A client on a fake server, with its first socket. */
async function open(options: Parameters<typeof connect>[2] = {}, token: Parameters<typeof connect>[1] = TOKEN) {
  const server = new FakeServer();
  const client = await connect(['ws://node-a/v1/socket', 'ws://node-b/v1/socket'], token, { WebSocket: server.WebSocket, seed: 1, ...options });
  const socket = await server.next();
  return { server, client, socket };
}

test('AC-SDKTS-1: the token travels as the bearer.<token> subprotocol beside arqon.v1.batch; Welcome is kept', async () => {
  const { client, socket } = await open();
  assert.deepEqual(socket.protocols, ['arqon.v1.batch', `bearer.${TOKEN}`]);
  assert.equal(client.welcome?.userId, 'alice');
  assert.equal(client.welcome?.tenantId, 'acme');
  client.close();
});

test('AC-SDKTS-3: a reply is matched by correlation id; an Error rejects exactly its call with its type', async () => {
  const { client, socket } = await open();
  const a = client.join('a');
  const b = client.publish('b', 'hi');
  const joinA = await socket.received('join');
  const pubB = await socket.received('publish');
  socket.push(error(ErrorCode.POLICY_BLOCKED, pubB.header?.correlationId), { correlationId: pubB.header?.correlationId ?? '' });
  await assert.rejects(b, PolicyBlocked);
  // A Message is never taken for a reply.
  socket.push(message('a', 'not a reply', 0n, ''), { correlationId: joinA.header?.correlationId ?? '' });
  socket.ack(joinA);
  await a;
  assert.equal(joinA.body.case === 'join' && joinA.body.value.room, 'a');
  client.close();
});

test('AC-SDKTS-3: an uncorrelated error fails the only pending request, else goes to the error stream', async () => {
  const { client, socket } = await open();
  const only = client.join('x');
  await socket.received('join');
  socket.push(error(ErrorCode.INVALID_ROOM));
  await assert.rejects(only, InvalidRoom);
  const one = client.publish('r', '1');
  const two = client.publish('r', '2');
  const [p1, p2] = [await socket.received('publish'), await socket.received('publish')];
  socket.push(error(ErrorCode.RATE_LIMITED, '', 500));
  const stray = await client.nextError(1000);
  assert.ok(stray instanceof RateLimited && stray.retryAfterMs === 500, 'two pending: ambiguous, to the stream');
  socket.ack(p1);
  socket.ack(p2);
  await Promise.all([one, two]);
  client.close();
});

test("AC-SDKTS-5: on Drain the client reconnects to the next URL, no sooner than reconnectAfterMs, and rejoins with metadata and position", async () => {
  const { server, client, socket } = await open();
  const joined = client.join('lobby', { status: 'busy' });
  socket.ack(await socket.received('join'));
  await joined;
  socket.push(recovery('lobby', 0, 4n));
  socket.push(message('lobby', 'five', 5n));
  assert.equal((await client.nextMessage({ room: 'lobby', timeoutMs: 1000 })).text, 'five');
  const drained = Date.now();
  socket.push({ case: 'drain', value: create(DrainSchema, { reason: 'bye', reconnectAfterMs: 300 }) });
  const again = await server.next();
  assert.ok(Date.now() - drained >= 300, `reconnected after ${Date.now() - drained} ms, before the Drain's 300 ms`);
  assert.equal(again.url, 'ws://node-b/v1/socket', 'the next URL of the list');
  const rejoin = await again.received('join');
  assert.ok(rejoin.body.case === 'join');
  assert.deepEqual({ ...rejoin.body.value.metadata }, { status: 'busy' });
  assert.equal(rejoin.body.value.since?.offset, 5n);
  assert.equal(rejoin.body.value.since?.epoch, 'e1');
  again.ack(rejoin);
  // AC-SDKTS-6: what was seen is dropped, the rest is delivered once, in order.
  // Two recovered messages, then live traffic that overlaps them (seven again), then new.
  again.push(recovery('lobby', 2, 7n));
  for (const [text, offset] of [['six', 6n], ['seven', 7n], ['seven', 7n], ['five', 5n], ['eight', 8n]] as const) again.push(message('lobby', text, offset));
  const got = [];
  for (let i = 0; i < 3; i += 1) got.push((await client.nextMessage({ room: 'lobby', timeoutMs: 1000 })).text);
  assert.deepEqual(got, ['six', 'seven', 'eight']);
  assert.equal(client.reconnects, 1);
  client.close();
});

test('AC-SDKTS-5: close codes 4001-4004 are final: pending calls fail with the code, no reconnect', async () => {
  for (const code of [4001, 4002, 4003, 4004]) {
    const { server, client, socket } = await open();
    const closed = nextEvent(client, 'closed', 2000);
    const pending = client.ping();
    await socket.received('ping');
    socket.drop(code);
    await assert.rejects(pending, (e: unknown) => e instanceof ConnectionClosed && e.code === code);
    assert.equal((await closed).code, code);
    await assert.rejects(server.next(300), /opened no socket/);
    await assert.rejects(client.ping(), ConnectionClosed);
  }
});

test('AC-SDKTS-5: a dropped socket (1006) reconnects with backoff; requests made meanwhile wait for it', async () => {
  const { server, client, socket } = await open({ backoff: { initialMs: 20, maxMs: 40 } });
  socket.drop(1006);
  const ping = client.ping();
  const again = await server.next();
  const sent = await again.received('ping');
  again.push({ case: 'pong', value: { $typeName: 'arqon.v1.Pong', nonce: 1n } } as Envelope['body'], { correlationId: sent.header?.correlationId ?? '' });
  assert.ok((await ping) >= 0);
  client.close();
});

test('AC-SDKTS-4: refreshToken is called ahead of exp; its token is sent as Refresh and used to reconnect', async () => {
  const short = fakeJwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 1 });
  const fresh = fakeJwt({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 3600 });
  let calls = 0;
  const { server, client, socket } = await open(
    {
      refreshToken: async () => {
        calls += 1;
        return fresh;
      },
    },
    short,
  );
  const refreshed = nextEvent(client, 'refreshed', 3000);
  const refresh = await socket.received('refresh', 3000);
  assert.ok(refresh.body.case === 'refresh' && refresh.body.value.token === fresh);
  socket.ack(refresh);
  await refreshed;
  assert.equal(calls, 1);
  socket.drop(1006);
  const again = await server.next();
  assert.deepEqual(again.protocols, ['arqon.v1.batch', `bearer.${fresh}`], 'the reconnect uses the newest token');
  client.close();
});

test("AC-SDKTS-12: heartbeats at the Welcome's interval", async () => {
  const server = new FakeServer();
  server.heartbeatIntervalMs = 100;
  const client = await connect('ws://node/v1/socket', TOKEN, { WebSocket: server.WebSocket });
  const socket = await server.next();
  const started = Date.now();
  await socket.received('heartbeat', 1000);
  await socket.received('heartbeat', 1000);
  assert.ok(Date.now() - started >= 150, 'two beats take about two intervals');
  assert.equal((await socket.received('heartbeat')).header?.protocolVersion, 1);
  client.close();
});

test('AC-SDKTS-8: the SDK never logs the token, whatever happens', async () => {
  const lines: string[] = [];
  const logger: Logger = { debug: (m) => lines.push(m), info: (m) => lines.push(m), warn: (m) => lines.push(m) };
  const { server, client, socket } = await open({ logger, backoff: { initialMs: 10, maxMs: 20 } });
  socket.push(error(ErrorCode.TOKEN_INVALID));
  socket.onmessage?.({ data: 'a text frame' });
  socket.onmessage?.({ data: new Uint8Array([0xff, 0xff, 0xff]).buffer });
  socket.drop(1006);
  const again = await server.next();
  again.drop(4002);
  await nextEvent(client, 'closed', 3000);
  assert.ok(lines.length >= 3, `the logger heard ${lines.length} lines`);
  const secret = TOKEN.split('.')[1] as string;
  assert.ok(lines.every((l) => !l.includes(secret) && !l.includes(TOKEN)), lines.join('\n'));
});

test('AC-SDKTS-7: messages(room) is an async iterator that ends when the client closes; full inboxes drop the oldest and count it', async () => {
  const { client, socket } = await open({ inboxSize: 2 });
  const joined = client.join('lobby');
  socket.ack(await socket.received('join'));
  await joined;
  const texts: string[] = [];
  const reading = (async () => {
    for await (const m of client.messages('lobby')) {
      texts.push(m.text);
      if (texts.length === 2) client.close();
    }
  })();
  socket.push(message('lobby', 'one', 0n, ''));
  socket.push(message('lobby', 'two', 0n, ''));
  await reading;
  assert.deepEqual(texts, ['one', 'two']);
  // The all-rooms inbox was never read: it holds the newest two of three and counts the drop.
  const other = await open({ inboxSize: 2 });
  for (const t of ['a', 'b', 'c']) other.socket.push(message('x', t, 0n, ''));
  assert.equal(other.client.dropped, 1);
  assert.equal((await other.client.nextMessage({ timeoutMs: 100 })).text, 'b');
  other.client.close();
  assert.equal((await other.client.nextMessage({ timeoutMs: 100 })).text, 'c', 'what arrived before the close is still read');
  await assert.rejects(other.client.nextMessage({ timeoutMs: 100 }), ConnectionClosed);
});

test('AC-SDKTS-5: the first connect tries each URL of the list once, in order', async () => {
  const server = new FakeServer();
  server.autoWelcome = false;
  const connecting = connect(['ws://down/v1/socket', 'ws://up/v1/socket'], TOKEN, { WebSocket: server.WebSocket, seed: 1 });
  const down = await server.next();
  down.drop(1006);
  const up = await server.next();
  up.accept();
  up.welcome();
  const client = await connecting;
  assert.equal(client.url, 'ws://up/v1/socket');
  client.close();
  const alone = new FakeServer();
  alone.autoWelcome = false;
  const failing = connect('ws://down/v1/socket', TOKEN, { WebSocket: alone.WebSocket });
  (await alone.next()).drop(1006);
  await assert.rejects(failing, (e: unknown) => e instanceof ConnectionClosed && e.code === 1006);
});

// AC-SDKTS-14: a batch frame (arqon.v1.batch) is its envelopes, each dispatched in order as if it had come alone.
test('AC-SDKTS-14: a batch frame is unpacked in order, including envelopes behind the Welcome; a batch inside a batch is dropped', async () => {
  const server = new FakeServer();
  server.autoWelcome = false;
  const connecting = connect('ws://node-a/v1/socket', TOKEN, { WebSocket: server.WebSocket, seed: 1 });
  const socket = await server.next();
  socket.accept();
  socket.pushBatch([FakeSocket.welcomeBody(), message('lobby', 'one', 0n, ''), message('lobby', 'two', 0n, '')]);
  const client = await connecting;
  assert.equal(client.welcome?.userId, 'alice');
  const pinging = client.ping();
  const ping = await socket.received('ping');
  const nested = { case: 'batch', value: create(BatchSchema, { envelopes: [create(EnvelopeSchema, { body: message('lobby', 'nested', 0n, '') })] }) } as Envelope['body'];
  socket.pushBatch([
    message('lobby', 'three', 0n, ''),
    nested,
    { body: { case: 'pong', value: create(PongSchema, { nonce: ping.body.case === 'ping' ? ping.body.value.nonce : 0n }) }, correlationId: ping.header?.correlationId ?? '' },
    message('lobby', 'four', 0n, ''),
  ]);
  assert.ok((await pinging) >= 0, 'the Pong inside the batch answered the ping');
  const texts: string[] = [];
  for (let i = 0; i < 4; i += 1) texts.push((await client.nextMessage({ timeoutMs: 1000 })).text);
  assert.deepEqual(texts, ['one', 'two', 'three', 'four']);
  await assert.rejects(client.nextMessage({ timeoutMs: 50 }));
  client.close();
});

// The SDK against real arq nodes on both spines: connect, chat between two clients, presence, typed refusals, token refresh (AC-SDKTS-1, -3, -4, -7).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError, connect, Forbidden, InvalidRoom, NotInRoom, PolicyBlocked, TokenRefused } from '../../src/index.js';
import type { Client } from '../../src/index.js';
import { DigestMismatch, GovernanceClient, proposalDigest } from '../../src/governance.js';
import { Bus, nextEvent, until } from '../helpers/bus.js';
import type { Spine } from '../helpers/bus.js';

const WAIT = 10_000;
/** Far shorter than the request time-out: a refusal that came as a time-out would take longer. */
const ONE_ROUND_TRIP = 2_000;

async function timed<T>(call: Promise<T>): Promise<number> {
  const started = Date.now();
  await call.catch(() => undefined);
  return Date.now() - started;
}

for (const spine of ['embedded', 'nats'] as Spine[]) {
  describe(`on the ${spine} spine`, () => {
    const bus = new Bus(spine);
    const clients: Client[] = [];
    const open = async (sub: string, options: Parameters<typeof connect>[2] = {}, tenant = 'acme') => {
      const client = await connect(bus.url, bus.token(sub, { tenant }), { requestTimeoutMs: 30_000, seed: 11, ...options });
      clients.push(client);
      return client;
    };
    before(() => bus.start());
    after(async () => {
      for (const c of clients) c.close();
      await bus.stop();
    });

    test(`AC-SDKTS-1 [${spine}]: connect with the token in Sec-WebSocket-Protocol gets Welcome with the token's identity`, async () => {
      const client = await open('alice');
      assert.equal(client.welcome?.tenantId, 'acme');
      assert.equal(client.welcome?.userId, 'alice');
      assert.ok((client.welcome?.heartbeatIntervalMs ?? 0) > 0);
      assert.equal((client as unknown as { socket: { protocol: string } }).socket.protocol, 'arqon.v1.batch', 'the server echoed arqon.v1.batch');
      assert.ok((await client.ping()) < ONE_ROUND_TRIP);
      await assert.rejects(connect(bus.url, 'not-a-jwt'), (e: unknown) => e instanceof AuthError && e.status === 401);
      // A real token with a broken signature: refused too, and the error never quotes it (AC-SDKTS-8).
      const forged = `${bus.token('mallory').slice(0, -4)}AAAA`;
      await assert.rejects(connect(bus.url, forged), (e: unknown) => e instanceof AuthError && e.status === 401 && !e.message.includes(forged.split('.')[1] as string));
    });

    test(`AC-SDKTS-7 [${spine}]: two clients chat in a room; presence shows the join and exactly one leave`, async () => {
      const alice = await open('alice');
      await alice.join('lobby', { status: 'busy' });
      const bob = await open('bob');
      const callbacks: string[] = [];
      bob.onMessage('lobby', (m) => callbacks.push(m.text));
      await bob.join('lobby');
      const joined = await until((t) => alice.nextPresence(t), (e) => e.kind === 'join' && e.members.some((m) => m.userId === 'bob'));
      assert.deepEqual(joined.members.filter((m) => m.userId === 'bob').map((m) => m.sessionId), [bob.welcome?.sessionId]);
      const snapshot = await until((t) => bob.nextPresence(t), (e) => e.kind === 'snapshot');
      assert.deepEqual(snapshot.members.map((m) => m.userId).sort(), ['alice', 'bob']);
      assert.deepEqual(bob.members('lobby').map((m) => m.userId).sort(), ['alice', 'bob'], 'the local members view');
      const listed = await bob.presence('lobby', 1); // one member per page: follows the page token
      assert.deepEqual(listed.map((m) => m.userId).sort(), ['alice', 'bob']);
      assert.deepEqual(listed.filter((m) => m.userId === 'alice').map((m) => m.metadata), [{ status: 'busy' }]);

      await alice.publish('lobby', 'hello bob', { twistId: 'twist-42' });
      const got = await bob.nextMessage({ room: 'lobby', timeoutMs: WAIT });
      assert.equal(got.text, 'hello bob');
      assert.equal(got.twistId, 'twist-42');
      assert.equal(got.senderUserId, 'alice');
      assert.equal(got.senderSessionId, alice.welcome?.sessionId);
      assert.equal(got.tenantId, 'acme');
      assert.ok(got.offset > 0n && got.epoch, 'a positioned message (history is on by default)');
      assert.deepEqual(callbacks, ['hello bob'], 'the per-room callback saw it too');
      await bob.publish('lobby', new Uint8Array([1, 2, 3]));
      const binary = await until((t) => alice.nextMessage({ room: 'lobby', timeoutMs: t }), (m) => m.senderUserId === 'bob');
      assert.deepEqual([...binary.payload], [1, 2, 3]);
      assert.equal(binary.contentType, 'application/octet-stream');

      bob.close();
      const left = await until((t) => alice.nextPresence(t), (e) => e.kind === 'leave');
      assert.deepEqual(left.members.map((m) => m.userId), ['bob']);
      assert.deepEqual(alice.members('lobby').map((m) => m.userId), ['alice']);
      // Exactly one leave: a marker join after it must be the next presence event.
      const carol = await open('carol');
      await carol.join('lobby');
      const next = await alice.nextPresence(WAIT);
      assert.deepEqual([next.kind, next.members.map((m) => m.userId)], ['join', ['carol']]);
    });

    test(`AC-SDKTS-7 [${spine}]: a client of another tenant receives nothing of this one`, async () => {
      const ann = await open('ann');
      const gus = await open('gus', {}, 'globex');
      await ann.join('shared-name');
      await gus.join('shared-name');
      await ann.publish('shared-name', 'acme only');
      await gus.publish('shared-name', 'globex marker');
      const first = await gus.nextMessage({ room: 'shared-name', timeoutMs: WAIT });
      assert.deepEqual([first.tenantId, first.text], ['globex', 'globex marker']);
      assert.deepEqual((await gus.presence('shared-name')).map((m) => m.userId), ['gus']);
    });

    test(`AC-SDKTS-3 [${spine}]: refusals are typed and answer their own call within one round trip`, async () => {
      const alice = await open('alice');
      const bob = await open('bob');
      for (const bad of ['a.>', 'r'.repeat(300), 'with space']) {
        const took = await timed(assert.rejects(alice.join(bad), (e: unknown) => e instanceof InvalidRoom && e.codeName === 'ERROR_CODE_INVALID_ROOM' && e.correlationId !== ''));
        assert.ok(took < ONE_ROUND_TRIP, `InvalidRoom took ${took} ms`);
      }
      await assert.rejects(alice.publish('nowhere', 'hi'), NotInRoom);
      await alice.join('safety');
      await bob.join('safety');
      const took = await timed(assert.rejects(alice.publish('safety', 'this carries malware'), (e: unknown) => e instanceof PolicyBlocked && e.codeName === 'ERROR_CODE_POLICY_BLOCKED'));
      assert.ok(took < ONE_ROUND_TRIP, `PolicyBlocked took ${took} ms`);
      await alice.publish('safety', 'clean');
      assert.equal((await bob.nextMessage({ room: 'safety', timeoutMs: WAIT })).text, 'clean', 'the blocked message was never routed');
    });

    test(`AC-SDKTS-11 [${spine}]: the governance client sends telemetry, an alert and proposals, and hears each decision (the approval's digest verifies)`, async () => {
      const dataplane = await connect(bus.url, bus.token('dp-1', { role: 'dataplane' }), { seed: 2 });
      clients.push(dataplane);
      const governance = new GovernanceClient(dataplane);
      await governance.sendTelemetry('dp-1', { latency_p99: 3.5, throughput: 1200 }, BigInt(Date.now()) * 1000n);
      await governance.sendAlert({ timestampUs: BigInt(Date.now()) * 1000n, severity: 2, message: 'p99 up', context: { room: 'lobby' } });
      const now = () => BigInt(Date.now()) * 1000n;
      // Below the node's minimum confidence: rejected, and the rejection names it.
      const doubtful = await governance.sendProposal({ id: `doubt-${spine}`, timestampUs: now(), variantId: 3n, reason: 'a hunch', confidence: 0.05 });
      const rejected = await governance.next(WAIT);
      assert.equal(rejected.case, 'rejection');
      assert.equal(rejected.value.proposalId, doubtful.id);
      // A sound one is auto-approved (tests/helpers/bus.ts) with the digest this SDK computes.
      const sound = await governance.sendProposal({ id: `sound-${spine}`, timestampUs: now(), variantId: 7n, params: { beta: 2, alpha: 0.5 }, reason: 'latency', confidence: 0.95 });
      const approved = await governance.next(WAIT);
      assert.equal(approved.case, 'approval', `got ${approved.case}: ${JSON.stringify(approved.value, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      assert.equal(approved.value.proposalId, sound.id);
      assert.equal(approved.value.proposalDigest, await proposalDigest(sound), 'the server digest equals the TypeScript one');
      await governance.verify(sound, approved.value);
      await assert.rejects(governance.verify(doubtful, approved.value), DigestMismatch);
      // A data plane may not enforce: the writer's FORBIDDEN is the call's one answer, in one
      // round trip, and nothing else arrives for it (AC-GOV-22).
      const stop = { case: 'enforce' as const, value: { reason: 'not mine to stop', action: { case: 'emergencyStop' as const, value: {} } } };
      const took = await timed(assert.rejects(governance.sendDownstream(stop), (e: unknown) => e instanceof Forbidden && e.correlationId !== ''));
      assert.ok(took < ONE_ROUND_TRIP, `Forbidden took ${took} ms`);
      await governance.sendTelemetry('dp-1', { after_refusal: 1 }, now());
      await assert.rejects(dataplane.nextError(300));
    });

    test(`AC-SDKTS-4 [${spine}]: refreshToken keeps the session past the first token's exp; without it the node closes the session with 4001, for good`, async () => {
      let calls = 0;
      const client = await connect(bus.url, bus.token('dora', { ttl: '3s' }), {
        seed: 5,
        refreshAheadMs: 2_000,
        refreshToken: async () => {
          calls += 1;
          return bus.token('dora');
        },
      });
      const twin = await connect(bus.url, bus.token('dora-twin', { ttl: '3s' }), { seed: 6 });
      clients.push(client, twin);
      const drops: (number | null)[] = [];
      client.on('disconnected', (e) => drops.push(e.code));
      const twinClosed = nextEvent(twin, 'closed', 20_000);
      const refreshed = await nextEvent(client, 'refreshed');
      assert.equal(calls, 1);
      assert.ok((refreshed.expiresAtMs ?? 0) > Date.now() + 3_000_000, 'the new token is the long one');
      // The twin's token expires (exp + the test node's 1 s leeway): the node closes it with 4001, final.
      assert.equal((await twinClosed).code, 4001);
      assert.equal(twin.reconnects, 0);
      // At that moment the refreshed session, minted at the same time, still answers on the same socket.
      assert.ok((await client.ping()) < ONE_ROUND_TRIP);
      assert.deepEqual(drops, [], 'the socket never dropped');
      assert.equal(client.reconnects, 0);
      await assert.rejects(client.refresh('not-a-jwt'), TokenRefused);
    });
  });
}

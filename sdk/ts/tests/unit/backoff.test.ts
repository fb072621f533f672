// The reconnect policy: exponential backoff, seeded jitter, the server's floor (Drain, Retry-After) used once (AC-SDKTS-5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_BACKOFF, ReconnectPolicy, backoffDelay, parseRetryAfter, seededRandom, stretch } from '../../src/backoff.js';

test('AC-SDKTS-5: the backoff doubles from 50 ms to at most 5 s, like the Rust client', () => {
  const delays = Array.from({ length: 10 }, (_, i) => backoffDelay(DEFAULT_BACKOFF, i));
  assert.deepEqual(delays, [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
  assert.equal(backoffDelay({ initialMs: 10, maxMs: 1e12 }, 1000), 10 * 2 ** 16, 'the exponent is capped');
});

test('AC-SDKTS-5: the jitter stretches a wait by 0-50 %, never less than the wait', () => {
  const random = seededRandom(42);
  const waits = Array.from({ length: 1000 }, () => stretch(1000, random));
  assert.ok(waits.every((w) => w >= 1000 && w <= 1500), 'within [d, 1.5 d]');
  assert.ok(new Set(waits).size > 100, 'spread out, not one value');
  assert.ok(Math.min(...waits) < 1100 && Math.max(...waits) > 1400, 'covers the range');
  assert.equal(stretch(1000, () => 0), 1000);
  assert.equal(stretch(1000, () => 0.999999), 1500);
  assert.equal(stretch(0, random), 0);
});

test('AC-SDKTS-5: a seed gives the same jitter every time', () => {
  const a = new ReconnectPolicy(DEFAULT_BACKOFF, seededRandom(7));
  const b = new ReconnectPolicy(DEFAULT_BACKOFF, seededRandom(7));
  const c = new ReconnectPolicy(DEFAULT_BACKOFF, seededRandom(8));
  const run = (p: ReconnectPolicy) => Array.from({ length: 8 }, (_, i) => p.nextWait(i));
  const first = run(a);
  assert.deepEqual(run(b), first);
  assert.notDeepEqual(run(c), first);
});

test("AC-SDKTS-5: a Drain's reconnectAfterMs or a 503's Retry-After is a floor, used once", () => {
  const policy = new ReconnectPolicy({ initialMs: 50, maxMs: 5000 }, () => 0.5);
  policy.serverAsked(2000);
  const floored = policy.nextWait(0);
  assert.ok(floored >= 2000 && floored <= 3000, `${floored}`);
  assert.ok(policy.nextWait(0) < 100, 'the floor is used once');
  policy.serverAsked(10);
  assert.ok(policy.nextWait(3) >= 400, 'a floor below the backoff does not shorten it');
});

test('AC-SDKTS-5: Retry-After in delay-seconds; a date or garbage is ignored', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(' 0 '), 0);
  assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT'), null);
  assert.equal(parseRetryAfter(undefined), null);
  assert.equal(parseRetryAfter('-1'), null);
});

// Reading a JWT's exp without verification, and when to refresh it (AC-SDKTS-4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { refreshDelayMs, tokenExpiryMs } from '../../src/jwt.js';
import { fakeJwt } from '../helpers/fake.js';

test('AC-SDKTS-4: exp is read from the payload (base64url, unverified)', () => {
  assert.equal(tokenExpiryMs(fakeJwt({ exp: 1_767_225_600, sub: 'al?ce>~' })), 1_767_225_600_000);
  assert.equal(tokenExpiryMs(fakeJwt({ sub: 'no-exp' })), null);
  assert.equal(tokenExpiryMs(fakeJwt({ exp: 'soon' })), null);
  assert.equal(tokenExpiryMs('not-a-jwt'), null);
  assert.equal(tokenExpiryMs('a.!!!.c'), null);
  assert.equal(tokenExpiryMs(''), null);
});

test('AC-SDKTS-4: refresh ahead of exp, half-way for short tokens, never negative', () => {
  const now = 1_000_000;
  assert.equal(refreshDelayMs(now + 3_600_000, now, 60_000), 3_540_000);
  assert.equal(refreshDelayMs(now + 10_000, now, 60_000), 5_000, 'shorter than the ahead window: half-way');
  assert.equal(refreshDelayMs(now + 100_000, now, 60_000), 50_000, 'half-way comes later than 60 s ahead');
  assert.equal(refreshDelayMs(now + 60_000, now, 10_000), 50_000);
  assert.equal(refreshDelayMs(now - 5, now, 60_000), 0);
});

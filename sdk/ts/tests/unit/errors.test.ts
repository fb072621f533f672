// Every ErrorCode maps to exactly one typed error that keeps the code, as in Python's errors.py (AC-SDKTS-3).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ErrorCode } from '../../src/gen/arqon/v1/session_pb.js';
import * as errors from '../../src/errors.js';

const KINDS: Record<string, string> = {
  PROTOCOL_ERROR: 'ProtocolRefused',
  TEXT_FRAME: 'ProtocolRefused',
  FRAME_TOO_LARGE: 'ProtocolRefused',
  UNSUPPORTED_VERSION: 'ProtocolRefused',
  INVALID_ROOM: 'InvalidRoom',
  NOT_IN_ROOM: 'NotInRoom',
  ROOM_LIMIT: 'RoomLimit',
  PAYLOAD_TOO_LARGE: 'PayloadTooLarge',
  RATE_LIMITED: 'RateLimited',
  UNAUTHENTICATED: 'TokenRefused',
  TOKEN_EXPIRED: 'TokenRefused',
  TOKEN_INVALID: 'TokenRefused',
  FORBIDDEN: 'Forbidden',
  POLICY_BLOCKED: 'PolicyBlocked',
  POLICY_TRAP: 'PolicyBlocked',
  POLICY_TIMEOUT: 'PolicyBlocked',
  POLICY_MEMORY: 'PolicyBlocked',
  POLICY_ABI: 'PolicyBlocked',
  POLICY_LOAD: 'PolicyBlocked',
  SLOW_CONSUMER: 'ServerError',
  SERVER_DRAINING: 'ServerDraining',
  DIGEST_MISMATCH: 'GovernanceRefused',
  CATALOG_STALE: 'GovernanceRefused',
  NOT_FOUND: 'GovernanceRefused',
  INTERNAL: 'ServerError',
  HISTORY_UNAVAILABLE: 'HistoryUnavailable',
  UNSPECIFIED: 'ServerError',
};

const codes = Object.entries(ErrorCode).filter(([, v]) => typeof v === 'number') as [string, number][];

test('AC-SDKTS-3: every ErrorCode has its typed error, which keeps the code and the retry-after', () => {
  assert.deepEqual(codes.map(([name]) => name).sort(), Object.keys(KINDS).sort(), 'the table covers every code of proto/');
  for (const [name, code] of codes) {
    const error = errors.serverError({ code, message: 'why', correlationId: 'c-9', retryAfterMs: 250 });
    assert.equal(error.constructor.name, KINDS[name], name);
    assert.ok(error instanceof errors.ServerError && error instanceof errors.ArqonError && error instanceof Error);
    assert.equal(error.code, code);
    assert.equal(error.codeName, `ERROR_CODE_${name}`);
    assert.equal(error.correlationId, 'c-9');
    assert.equal(error.retryAfterMs, 250);
    assert.equal(error.serverMessage, 'why');
    assert.equal(error.name, KINDS[name]);
  }
});

test('AC-SDKTS-3: ProtocolRefused is also a ProtocolError; other refusals are not', () => {
  const refused = errors.serverError({ code: ErrorCode.TEXT_FRAME, message: '', correlationId: '', retryAfterMs: 0 });
  assert.ok(refused instanceof errors.ProtocolRefused);
  assert.ok(refused instanceof errors.ProtocolError);
  assert.ok(!(errors.serverError({ code: ErrorCode.INVALID_ROOM, message: '', correlationId: '', retryAfterMs: 0 }) instanceof errors.ProtocolError));
  assert.ok(new errors.ProtocolError('x') instanceof errors.ProtocolError);
});

test('AC-SDKTS-3: an unknown code is a ServerError with its number', () => {
  const error = errors.serverError({ code: 999 as ErrorCode, message: 'new', correlationId: '', retryAfterMs: 0 });
  assert.equal(error.constructor, errors.ServerError);
  assert.equal(error.codeName, '999');
});

test('AC-SDKTS-3: connection errors name their close code; 4001-4004 are final', () => {
  const closed = new errors.ConnectionClosed(4007);
  assert.equal(closed.code, 4007);
  assert.equal(closed.reason, 'server draining');
  assert.deepEqual([...errors.FATAL_CLOSE_CODES].sort(), [4001, 4002, 4003, 4004]);
  assert.equal(new errors.AuthError(401, 'bad token').status, 401);
  assert.equal(new errors.Unavailable(2000).retryAfterMs, 2000);
});

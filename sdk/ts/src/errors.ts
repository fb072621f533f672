/** Typed errors of the ArqonBus TypeScript SDK: one class per kind of refusal, the same kinds as the Python SDK's errors.py. */
import { ErrorCode } from './gen/arqon/v1/session_pb.js';
import type { Error as ErrorBody } from './gen/arqon/v1/session_pb.js';

/** WebSocket close codes the server uses (specs/protocol.md). */
export const CLOSE_CODES: Readonly<Record<number, string>> = {
  4000: 'too many protocol errors',
  4001: 'token expired',
  4002: 'token invalid',
  4003: 'forbidden',
  4004: 'unsupported protocol version',
  4005: 'heartbeat timeout',
  4006: 'slow consumer',
  4007: 'server draining',
  4008: 'frame too large',
  4009: 'internal error',
};

/** Close codes after which reconnecting with the same token cannot succeed: the client stops. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([4001, 4002, 4003, 4004]);

/** Base class of every error this SDK throws. */
export class ArqonError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The server refused the token with HTTP 401 before the upgrade (seen in Node only; see specs/sdk-ts.md). */
export class AuthError extends ArqonError {
  constructor(
    readonly status: number,
    readonly body = '',
  ) {
    super(`authentication refused (HTTP ${status})${body ? `: ${body}` : ''}`);
  }
}

/** The server refused the connection for now (HTTP 503); retry after `retryAfterMs` (null when not said). */
export class Unavailable extends ArqonError {
  constructor(readonly retryAfterMs: number | null) {
    super(`server unavailable${retryAfterMs === null ? '' : `, retry after ${retryAfterMs} ms`}`);
  }
}

/** The connection is closed; `code` is the WebSocket close code (see CLOSE_CODES), null when none was seen. */
export class ConnectionClosed extends ArqonError {
  readonly reason: string;
  constructor(
    readonly code: number | null,
    reason = '',
  ) {
    const text = reason || CLOSE_CODES[code ?? 0] || '';
    super(`connection closed (${code}${text ? `: ${text}` : ''})`);
    this.reason = text;
  }
}

/** The server answered a request with an `Error` envelope. */
export class ServerError extends ArqonError {
  /** The code's name, e.g. `ERROR_CODE_INVALID_ROOM` (the number when this SDK does not know it). */
  readonly codeName: string;
  constructor(
    readonly code: number,
    readonly serverMessage: string,
    readonly correlationId = '',
    readonly retryAfterMs = 0,
  ) {
    const name = ErrorCode[code] === undefined ? String(code) : `ERROR_CODE_${ErrorCode[code]}`;
    super(`${name}: ${serverMessage}`);
    this.codeName = name;
  }
}

/** A safety policy blocked the message, or failed, which blocks too (fail closed): every POLICY_* code. */
export class PolicyBlocked extends ServerError {}
/** The publish rate was exceeded; `retryAfterMs` says when to try again. */
export class RateLimited extends ServerError {}
/** The room name fails the grammar `[A-Za-z0-9_-]{1,128}`. */
export class InvalidRoom extends ServerError {}
/** The session has not joined the room. */
export class NotInRoom extends ServerError {}
/** The session is in as many rooms as it may be. */
export class RoomLimit extends ServerError {}
/** The payload is above the session's limit. */
export class PayloadTooLarge extends ServerError {}
/** The token was refused in-band (UNAUTHENTICATED, TOKEN_EXPIRED, TOKEN_INVALID), e.g. by `refresh`. */
export class TokenRefused extends ServerError {}
/** Authenticated but not allowed. */
export class Forbidden extends ServerError {}
/** The node is draining; the client reconnects elsewhere. */
export class ServerDraining extends ServerError {}
/** The tenant keeps no history, or it cannot be read now. */
export class HistoryUnavailable extends ServerError {}
/** A governance refusal (DIGEST_MISMATCH, CATALOG_STALE, NOT_FOUND). */
export class GovernanceRefused extends ServerError {}
/** The server refused the frame as a protocol error (PROTOCOL_ERROR, TEXT_FRAME, FRAME_TOO_LARGE,
 * UNSUPPORTED_VERSION); it is also an instance of ProtocolError. */
export class ProtocolRefused extends ServerError {}

/** The server sent something this client cannot understand (or refused a frame: ProtocolRefused). */
export class ProtocolError extends ArqonError {
  static override [Symbol.hasInstance](value: unknown): boolean {
    return value instanceof ProtocolRefused || Function.prototype[Symbol.hasInstance].call(this, value);
  }
}

type ServerErrorClass = new (code: number, message: string, correlationId?: string, retryAfterMs?: number) => ServerError;

const BY_CODE = new Map<number, ServerErrorClass>([
  ...[ErrorCode.POLICY_BLOCKED, ErrorCode.POLICY_TRAP, ErrorCode.POLICY_TIMEOUT, ErrorCode.POLICY_MEMORY, ErrorCode.POLICY_ABI, ErrorCode.POLICY_LOAD].map(
    (c) => [c, PolicyBlocked] as const,
  ),
  ...[ErrorCode.UNAUTHENTICATED, ErrorCode.TOKEN_EXPIRED, ErrorCode.TOKEN_INVALID].map((c) => [c, TokenRefused] as const),
  ...[ErrorCode.PROTOCOL_ERROR, ErrorCode.TEXT_FRAME, ErrorCode.FRAME_TOO_LARGE, ErrorCode.UNSUPPORTED_VERSION].map((c) => [c, ProtocolRefused] as const),
  ...[ErrorCode.DIGEST_MISMATCH, ErrorCode.CATALOG_STALE, ErrorCode.NOT_FOUND].map((c) => [c, GovernanceRefused] as const),
  [ErrorCode.RATE_LIMITED, RateLimited],
  [ErrorCode.INVALID_ROOM, InvalidRoom],
  [ErrorCode.NOT_IN_ROOM, NotInRoom],
  [ErrorCode.ROOM_LIMIT, RoomLimit],
  [ErrorCode.PAYLOAD_TOO_LARGE, PayloadTooLarge],
  [ErrorCode.FORBIDDEN, Forbidden],
  [ErrorCode.SERVER_DRAINING, ServerDraining],
  [ErrorCode.HISTORY_UNAVAILABLE, HistoryUnavailable],
]);

/** Maps an `Error` body to the most specific class (`ServerError` for INTERNAL, SLOW_CONSUMER and unknown codes). */
export function serverError(error: Pick<ErrorBody, 'code' | 'message' | 'correlationId' | 'retryAfterMs'>): ServerError {
  const Kind = BY_CODE.get(error.code) ?? ServerError;
  return new Kind(error.code, error.message, error.correlationId, error.retryAfterMs);
}

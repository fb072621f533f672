/** The arqon-sdk package: connect, rooms, presence, recovery and typed errors (governance lives in `arqon-sdk/governance`). */
export { Client, connect, encodeEnvelope, PROTOCOL_VERSION, DOWNSTREAM_BODIES } from './client.js';
export type { ClientEvents, ClientOptions, Logger, Member, Message, PresenceEvent, Recovery, TokenSource, Welcome } from './client.js';
export * from './errors.js';
export { RoomCursor } from './cursor.js';
export type { Position } from './cursor.js';
export { DEFAULT_BACKOFF, ReconnectPolicy, backoffDelay, parseRetryAfter, seededRandom, stretch } from './backoff.js';
export type { Backoff } from './backoff.js';
export { refreshDelayMs, tokenExpiryMs } from './jwt.js';
export { BATCH_SUBPROTOCOL, SUBPROTOCOL, TOKEN_SUBPROTOCOL_PREFIX } from './socket.js';
export type { WebSocketConstructor } from './socket.js';

/** Opens the WebSocket: the token as the `bearer.<token>` subprotocol beside `arqon.v1.batch`, binary frames, and the HTTP refusal when the runtime shows it. */
import { parseRetryAfter } from './backoff.js';
import { concatBytes } from './bytes.js';

/** The wire contract's subprotocol (one envelope per frame), and the prefix of the entry that carries the token (crates/arqon-auth/src/carrier.rs). */
export const SUBPROTOCOL = 'arqon.v1';
/** The subprotocol this SDK offers (and the server echoes): `arqon.v1` plus batch frames (specs/protocol.md, "Batch frames"). */
export const BATCH_SUBPROTOCOL = 'arqon.v1.batch';
export const TOKEN_SUBPROTOCOL_PREFIX = 'bearer.';

/** The part of the WHATWG WebSocket this SDK uses; browsers' and the `ws` package's sockets have it. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  readonly protocol: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}

/** A WebSocket constructor (`globalThis.WebSocket`, or `ws`'s default export). */
export type WebSocketConstructor = new (url: string, protocols: string[]) => unknown;

/** Why an upgrade failed: the HTTP status and Retry-After when the runtime shows them (Node's `ws`), else null. */
export interface UpgradeRefusal {
  status: number | null;
  retryAfterMs: number | null;
  body: string;
  closeCode: number | null;
  reason: string;
}

/** Where an open socket's frames and close go; installed as the socket opens, so no early frame is missed. */
export interface SocketHandlers {
  onFrame(data: unknown): void;
  onClose(code: number, reason: string): void;
}

let nodeWs: Promise<WebSocketConstructor> | null = null;

/** The constructor to use: the one given, else `globalThis.WebSocket`, else the `ws` package (Node without a global WebSocket). */
export async function resolveWebSocket(given?: WebSocketConstructor): Promise<WebSocketConstructor> {
  if (given) return given;
  const global = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (global) return global;
  // A non-literal specifier, so that browser bundlers leave the Node-only fallback alone.
  const name = 'ws';
  nodeWs ??= import(/* @vite-ignore */ name).then((m: { default: WebSocketConstructor }) => m.default);
  return nodeWs;
}

/** Listens for the HTTP answer of a refused upgrade where the socket exposes it (`ws`'s 'unexpected-response'). */
function watchRefusal(socket: unknown, refusal: UpgradeRefusal): void {
  const events = socket as {
    on?: (event: string, listener: (req: unknown, res: NodeResponse) => void) => void;
    terminate?: () => void;
  };
  if (typeof events.on !== 'function') return; // a browser: it never shows the status (specs/sdk-ts.md)
  events.on('unexpected-response', (_req, res) => {
    refusal.status = res.statusCode ?? null;
    const retry = res.headers?.['retry-after'];
    refusal.retryAfterMs = parseRetryAfter(Array.isArray(retry) ? retry[0] : retry);
    const chunks: string[] = [];
    res.setEncoding?.('utf8');
    res.on('data', (chunk: string) => {
      if (chunks.join('').length < 1024) chunks.push(chunk);
    });
    res.on('end', () => {
      refusal.body = chunks.join('').slice(0, 1024);
      events.terminate?.();
    });
    res.on('error', () => events.terminate?.());
  });
}

interface NodeResponse {
  statusCode?: number;
  headers?: Record<string, string | string[] | undefined>;
  setEncoding?: (encoding: string) => void;
  on(event: string, listener: (chunk: string) => void): void;
}

/** Opens `url` offering `arqon.v1.batch` and `bearer.<token>`; resolves with the open socket, rejects with the refusal. */
export function openSocket(
  Ctor: WebSocketConstructor,
  url: string,
  token: string,
  timeoutMs: number,
  handlers: SocketHandlers,
): Promise<SocketLike> {
  return new Promise((resolve, reject) => {
    const refusal: UpgradeRefusal = { status: null, retryAfterMs: null, body: '', closeCode: null, reason: '' };
    let socket: SocketLike;
    try {
      socket = new Ctor(url, [BATCH_SUBPROTOCOL, `${TOKEN_SUBPROTOCOL_PREFIX}${token}`]) as SocketLike;
    } catch (error) {
      // Never echo the constructor's message: it may quote the protocols, and so the token.
      reject(Object.assign(refusal, { reason: `cannot open the socket (${(error as Error).name})` }));
      return;
    }
    socket.binaryType = 'arraybuffer';
    watchRefusal(socket, refusal);
    const timer = setTimeout(() => {
      socket.close();
      reject(Object.assign(refusal, { reason: 'open timed out' }));
    }, timeoutMs);
    socket.onerror = () => {};
    socket.onmessage = (event) => handlers.onFrame(event.data);
    socket.onclose = (event) => {
      clearTimeout(timer);
      refusal.closeCode = event.code;
      reject(refusal);
    };
    socket.onopen = () => {
      clearTimeout(timer);
      socket.onclose = (event) => handlers.onClose(event.code, event.reason);
      resolve(socket);
    };
  });
}

/** The bytes of a binary frame, or null for a text frame. */
export function frameBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (Array.isArray(data)) {
    // ws may hand over fragments as Buffer[].
    return concatBytes(data as Uint8Array[]);
  }
  return null;
}

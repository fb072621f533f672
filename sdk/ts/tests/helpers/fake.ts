// A scripted in-memory WebSocket server for unit tests of the client's logic (no network), and unsigned JWTs.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { BatchSchema, EnvelopeSchema, HeaderSchema } from '../../src/gen/arqon/v1/envelope_pb.js';
import type { Envelope } from '../../src/gen/arqon/v1/envelope_pb.js';
import { AckSchema, WelcomeSchema } from '../../src/gen/arqon/v1/session_pb.js';

/** An unsigned JWT with `payload` (the client never verifies; the server does). */
export function fakeJwt(payload: Record<string, unknown>): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  return `${part({ alg: 'EdDSA', typ: 'JWT' })}.${part(payload)}.c2lnbmF0dXJl`;
}

type Body = Envelope['body'];

/** One fake socket: what the client sent, and a way to answer as the server. */
export class FakeSocket {
  binaryType = 'blob';
  readyState = 0;
  protocol = '';
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: Envelope[] = [];
  private readonly waiters: { accept: (e: Envelope) => boolean; resolve: (e: Envelope) => void }[] = [];

  constructor(
    readonly url: string,
    readonly protocols: string[],
  ) {}

  send(data: Uint8Array): void {
    const envelope = fromBinary(EnvelopeSchema, data);
    this.sent.push(envelope);
    const at = this.waiters.findIndex((w) => w.accept(envelope));
    if (at >= 0) this.waiters.splice(at, 1)[0]?.resolve(envelope);
  }

  /** The next envelope the client sends whose body is `kind` (or one already sent and not yet taken). */
  received(kind: NonNullable<Body['case']>, timeoutMs = 2000): Promise<Envelope> {
    const taken = (this as unknown as { taken?: Set<Envelope> }).taken ?? new Set<Envelope>();
    (this as unknown as { taken: Set<Envelope> }).taken = taken;
    const already = this.sent.find((e) => e.body.case === kind && !taken.has(e));
    if (already) {
      taken.add(already);
      return Promise.resolve(already);
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the client sent no ${kind} within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push({
        accept: (e) => e.body.case === kind && !taken.has(e),
        resolve: (e) => {
          clearTimeout(timer);
          taken.add(e);
          resolve(e);
        },
      });
    });
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  // ---- the server's side ----

  accept(): void {
    this.readyState = 1;
    this.protocol = 'arqon.v1.batch';
    this.onopen?.({});
  }

  push(body: Body, header: { correlationId?: string } = {}): void {
    this.pushEnvelope(create(EnvelopeSchema, { header: create(HeaderSchema, { protocolVersion: 1, ...header }), body }));
  }

  /** One batch frame (`arqon.v1.batch`) holding `items` (a body, or a body with its correlation id), oldest first, as the server packs them. */
  pushBatch(items: (Body | { body: Body; correlationId: string })[]): void {
    const envelopes = items.map((item) => {
      const { body, correlationId } = 'body' in item ? item : { body: item, correlationId: '' };
      return create(EnvelopeSchema, { header: create(HeaderSchema, { protocolVersion: 1, correlationId }), body });
    });
    this.pushEnvelope(create(EnvelopeSchema, { body: { case: 'batch', value: create(BatchSchema, { envelopes }) } }));
  }

  private pushEnvelope(envelope: Envelope): void {
    const bytes = toBinary(EnvelopeSchema, envelope);
    this.onmessage?.({ data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) });
  }

  /** The Welcome body the fake server sends. */
  static welcomeBody(heartbeatIntervalMs = 15_000): Body {
    return {
      case: 'welcome',
      value: create(WelcomeSchema, { sessionId: `s-${FakeServer.count}`, userId: 'alice', tenantId: 'acme', heartbeatIntervalMs }),
    } as Body;
  }

  welcome(heartbeatIntervalMs = 15_000): void {
    this.push(FakeSocket.welcomeBody(heartbeatIntervalMs));
  }

  /** Answers the client's request `request` with an Ack (same correlation id). */
  ack(request: Envelope): void {
    this.push({ case: 'ack', value: create(AckSchema, {}) } as Body, { correlationId: request.header?.correlationId ?? '' });
  }

  /** The server drops the connection with `code`. */
  drop(code: number): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: '' });
  }
}

/** A WebSocket constructor whose sockets the test scripts; `next()` resolves with each new socket. */
export class FakeServer {
  static count = 0;
  readonly sockets: FakeSocket[] = [];
  private readonly untaken: FakeSocket[] = [];
  private readonly waiting: ((s: FakeSocket) => void)[] = [];
  /** Set to answer new sockets at once with open + Welcome. */
  autoWelcome = true;
  heartbeatIntervalMs = 15_000;

  readonly WebSocket = (() => {
    const server = this;
    return class {
      constructor(url: string, protocols: string[]) {
        const socket = new FakeSocket(url, protocols);
        FakeServer.count += 1;
        server.sockets.push(socket);
        queueMicrotask(() => {
          if (server.autoWelcome) {
            socket.accept();
            socket.welcome(server.heartbeatIntervalMs);
          }
          const waiter = server.waiting.shift();
          if (waiter) waiter(socket);
          else server.untaken.push(socket);
        });
        return socket;
      }
    };
  })();

  /** The next socket the client opens (or the last one, if it is already open and not yet taken). */
  next(timeoutMs = 5000): Promise<FakeSocket> {
    const ready = this.untaken.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the client opened no socket within ${timeoutMs} ms`)), timeoutMs);
      this.waiting.push((s) => {
        clearTimeout(timer);
        resolve(s);
      });
    });
  }
}

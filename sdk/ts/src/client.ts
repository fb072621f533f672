/** The ArqonBus client: one WebSocket, rooms, presence, recovery, heartbeats, token refresh and reconnects (specs/sdk-ts.md). */
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { EnvelopeSchema, HeaderSchema } from './gen/arqon/v1/envelope_pb.js';
import type { Envelope } from './gen/arqon/v1/envelope_pb.js';
import { PresenceUpdateKind } from './gen/arqon/v1/presence_pb.js';
import type { Member as MemberBody } from './gen/arqon/v1/presence_pb.js';
import { DEFAULT_BACKOFF, ReconnectPolicy, seededRandom } from './backoff.js';
import type { Backoff } from './backoff.js';
import { RoomCursor } from './cursor.js';
import {
  ArqonError,
  AuthError,
  ConnectionClosed,
  FATAL_CLOSE_CODES,
  ProtocolError,
  Unavailable,
  serverError,
} from './errors.js';
import { Inbox } from './inbox.js';
import { refreshDelayMs, tokenExpiryMs } from './jwt.js';
import { frameBytes, openSocket, resolveWebSocket } from './socket.js';
import type { SocketLike, UpgradeRefusal, WebSocketConstructor } from './socket.js';

/** MAJOR version of the wire contract spoken by this SDK. */
export const PROTOCOL_VERSION = 1;
/** Bodies the control plane sends down to data planes (delivered as 'governance' events). */
export const DOWNSTREAM_BODIES = ['approval', 'rejection', 'enforce', 'catalogUpdate'] as const;

/** A message delivered to a room this client joined. */
export interface Message {
  room: string;
  payload: Uint8Array;
  contentType: string;
  tenantId: string;
  senderUserId: string;
  senderSessionId: string;
  twistId: string;
  timestampUs: bigint;
  messageId: string;
  /** The message's offset in the room's history (0 when the tenant keeps none) and its epoch. */
  offset: bigint;
  epoch: string;
  /** The payload decoded as UTF-8. */
  readonly text: string;
}

/** A session present in a room. */
export interface Member {
  userId: string;
  sessionId: string;
  nodeId: string;
  joinedAtUs: bigint;
  metadata: Record<string, string>;
}

/** A change of a room's members. */
export interface PresenceEvent {
  kind: 'snapshot' | 'join' | 'leave';
  room: string;
  members: Member[];
}

/** How a join (first, or again after a reconnect) was answered from the room's history: `count`
 * recovered messages follow; `recovered` is false when some are gone (refetch the room's state),
 * `truncated` when more were missed than one recovery returns. */
export interface Recovery {
  room: string;
  recovered: boolean;
  truncated: boolean;
  count: number;
}

/** What the server said when the session opened. */
export interface Welcome {
  sessionId: string;
  serverVersion: string;
  tenantId: string;
  userId: string;
  nodeId: string;
  heartbeatIntervalMs: number;
  maxPayloadBytes: number;
  maxRooms: number;
}

/** Where the SDK logs; it never logs a token. Default: nothing. */
export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
}

/** A token, or a function that returns the current one (called at every connect and reconnect). */
export type TokenSource = string | (() => string | Promise<string>);

export interface ClientOptions {
  /** The WebSocket constructor; default `globalThis.WebSocket`, else the `ws` package (Node). */
  WebSocket?: WebSocketConstructor;
  /** Reconnect when the socket drops (default true); close codes 4001–4004 never reconnect. */
  reconnect?: boolean;
  /** Reconnect backoff (default 50 ms doubling to 5 s, as the Rust client). */
  backoff?: Partial<Backoff>;
  /** The jitter's source of [0, 1) floats (default Math.random); `seed` makes a reproducible one. */
  random?: () => number;
  seed?: number;
  /** How long a request waits for its reply before it fails (default 10 s); refusals answer at once. */
  requestTimeoutMs?: number;
  /** How long opening a socket and waiting for Welcome may take (default 10 s). */
  openTimeoutMs?: number;
  /** Bound of each message and event inbox; when full the oldest is dropped and counted (default 10,000). */
  inboxSize?: number;
  /** Called ahead of the token's `exp`; its token is sent as `Refresh` and used for later reconnects. */
  refreshToken?: () => Promise<string>;
  /** How long before `exp` to refresh (default 60 s; half-way for a token with less than twice that left). */
  refreshAheadMs?: number;
  logger?: Logger;
}

/** Events a client emits to `on(…)` listeners. */
export interface ClientEvents {
  message: Message;
  presence: PresenceEvent;
  recovery: Recovery;
  /** A server error that answered no request. */
  error: ArqonError;
  /** A downstream governance envelope (approval, rejection, enforce, catalogUpdate). */
  governance: Envelope;
  /** The session opened (again, after a reconnect: then once its rooms are rejoined). */
  connected: Welcome;
  /** The server asked this client to reconnect elsewhere, no sooner than `reconnectAfterMs`. */
  drain: { reason: string; reconnectAfterMs: number };
  /** The socket dropped; the client reconnects unless told otherwise. */
  disconnected: { code: number | null };
  /** The token was refreshed in-band. */
  refreshed: { expiresAtMs: number | null };
  /** The client stopped for good (closed, or a final close code / refused token). */
  closed: { code: number | null };
}

type Listener<T> = (event: T) => void;

interface Pending {
  /** 'presence' waits for a PresenceUpdate; 'reply' for an Ack or Pong. Either takes an Error. */
  kind: 'reply' | 'presence';
  resolve(envelope: Envelope): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

/** The body half of an envelope: `{ case: 'join', value: {...} }`. */
export type Body = Envelope['body'];
type BodyInit = { case: NonNullable<Body['case']>; value: object };

const SILENT: Logger = { debug() {}, info() {}, warn() {} };
const decoder = new TextDecoder();
const encoder = new TextEncoder();

function toMember(m: MemberBody): Member {
  return { userId: m.userId, sessionId: m.sessionId, nodeId: m.nodeId, joinedAtUs: m.joinedAtUs, metadata: { ...m.metadata } };
}

/** Encodes an envelope with the protocol version set. */
export function encodeEnvelope(body: BodyInit, header: { correlationId?: string; twistId?: string; protocolVersion?: number } = {}): Uint8Array {
  const envelope = create(EnvelopeSchema, {
    header: create(HeaderSchema, { protocolVersion: PROTOCOL_VERSION, ...header }),
    body: body as Body,
  });
  return toBinary(EnvelopeSchema, envelope);
}

/** An open session. Create it with `await connect(url, token, options)`. */
export class Client {
  /** What the server said when the current session opened. */
  welcome: Welcome | null = null;
  /** The close code of the last socket that closed. */
  closeCode: number | null = null;
  /** How many times the client reconnected. */
  reconnects = 0;

  private readonly urls: string[];
  private urlIndex = 0;
  private token = '';
  private readonly tokenSource: TokenSource;
  private readonly opts: Required<Pick<ClientOptions, 'reconnect' | 'requestTimeoutMs' | 'openTimeoutMs' | 'inboxSize' | 'refreshAheadMs'>> & ClientOptions;
  private readonly log: Logger;
  private readonly policy: ReconnectPolicy;
  private socket: SocketLike | null = null;
  private ids = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly rooms = new Map<string, Record<string, string>>();
  private readonly cursors = new Map<string, RoomCursor>();
  private readonly roster = new Map<string, Map<string, Member>>();
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();
  private readonly messageInbox: Inbox<Message>;
  private readonly roomInboxes = new Map<string, Inbox<Message>>();
  private readonly presenceInbox: Inbox<PresenceEvent>;
  private readonly recoveryInbox: Inbox<Recovery>;
  private readonly errorInbox: Inbox<ArqonError>;
  private readonly governanceInbox: Inbox<Envelope>;
  private heartbeat: ReturnType<typeof setInterval> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private reconnecting = false;
  /** True once `refresh` succeeded: reconnects then use that token rather than the token function. */
  private refreshedInBand = false;
  private closing = false;
  private wakeReconnect: (() => void) | null = null;
  private openWaiters: { resolve(): void; reject(error: Error): void }[] = [];

  constructor(url: string | string[], token: TokenSource, options: ClientOptions = {}) {
    this.urls = Array.isArray(url) ? [...url] : [url];
    if (this.urls.length === 0) throw new TypeError('connect needs at least one URL');
    this.tokenSource = token;
    if (typeof token === 'string') this.token = token;
    this.opts = { reconnect: true, requestTimeoutMs: 10_000, openTimeoutMs: 10_000, inboxSize: 10_000, refreshAheadMs: 60_000, ...options };
    this.log = options.logger ?? SILENT;
    const random = options.random ?? (options.seed === undefined ? Math.random : seededRandom(options.seed));
    this.policy = new ReconnectPolicy({ ...DEFAULT_BACKOFF, ...options.backoff }, random);
    const size = this.opts.inboxSize;
    this.messageInbox = new Inbox(size);
    this.presenceInbox = new Inbox(size);
    this.recoveryInbox = new Inbox(size);
    this.errorInbox = new Inbox(size);
    this.governanceInbox = new Inbox(size);
  }

  /** The URL of the current (or last) connection. */
  get url(): string {
    return this.urls[this.urlIndex] as string;
  }

  /** True once the client stopped for good. */
  get closed(): boolean {
    return this.closing;
  }

  /** Messages dropped because an inbox was full (the oldest go first). */
  get dropped(): number {
    let n = this.messageInbox.dropped;
    for (const inbox of this.roomInboxes.values()) n += inbox.dropped;
    return n;
  }

  // ---- events ------------------------------------------------------------------------------

  /** Calls `listener` for each event of `kind`; returns a function that removes it. */
  on<K extends keyof ClientEvents>(kind: K, listener: Listener<ClientEvents[K]>): () => void {
    let set = this.listeners.get(kind);
    if (!set) this.listeners.set(kind, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  /** Calls `listener` for each message delivered to `room`; returns a function that removes it. */
  onMessage(room: string, listener: Listener<Message>): () => void {
    return this.on('message', (m) => {
      if (m.room === room) listener(m);
    });
  }

  private emit<K extends keyof ClientEvents>(kind: K, event: ClientEvents[K]): void {
    for (const listener of this.listeners.get(kind) ?? []) {
      try {
        (listener as Listener<ClientEvents[K]>)(event);
      } catch (error) {
        this.log.warn(`arqon: a ${kind} listener threw ${(error as Error).name}`);
      }
    }
  }

  // ---- lifecycle ---------------------------------------------------------------------------

  /** Opens the first session, trying each URL of the list once in order; throws the last typed
   * error (AuthError at once: another node would refuse the same token). */
  async start(): Promise<this> {
    for (let i = 0; ; i += 1) {
      try {
        await this.open();
        this.emit('connected', this.welcome as Welcome);
        return this;
      } catch (error) {
        if (error instanceof AuthError || i + 1 >= this.urls.length) {
          this.finish(this.closeCode);
          throw error;
        }
        this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      }
    }
  }

  private async currentToken(): Promise<string> {
    if (typeof this.tokenSource === 'function' && !this.refreshedInBand) this.token = await this.tokenSource();
    return this.token;
  }


  /** Opens a socket to the current URL and waits for Welcome. */
  private async open(): Promise<void> {
    const token = await this.currentToken();
    const Ctor = await resolveWebSocket(this.opts.WebSocket);
    let welcomed: ((welcome: Welcome) => void) | null = null;
    let refused: ((error: Error) => void) | null = null;
    const welcome = new Promise<Welcome>((resolve, reject) => {
      welcomed = resolve;
      refused = reject;
    });
    let socket: SocketLike | null = null;
    let closedEarly: number | null = null;
    // What arrives after Welcome but before this socket is installed (say, behind the Welcome in one
    // batch frame): held, then dispatched in order once it is; null once installed.
    let early: Envelope[] | null = [];
    const take = (envelope: Envelope) => {
      if (welcomed) {
        const resolveWelcome = welcomed;
        welcomed = null;
        if (envelope.body.case !== 'welcome') {
          early = null;
          refused?.(new ProtocolError(`expected Welcome, got ${envelope.body.case}`));
          return;
        }
        const w = envelope.body.value;
        resolveWelcome({
          sessionId: w.sessionId,
          serverVersion: w.serverVersion,
          tenantId: w.tenantId,
          userId: w.userId,
          nodeId: w.nodeId,
          heartbeatIntervalMs: w.heartbeatIntervalMs,
          maxPayloadBytes: w.limits?.maxPayloadBytes ?? 0,
          maxRooms: w.limits?.maxRooms ?? 0,
        });
        return;
      }
      if (early) early.push(envelope);
      else if (socket === this.socket) this.dispatch(envelope);
    };
    const handlers = {
      // A batch frame is its envelopes, each taken in order as if it had come alone.
      onFrame: (data: unknown) => {
        for (const envelope of this.decode(data)) take(envelope);
      },
      onClose: (code: number) => {
        if (socket !== null && socket === this.socket) {
          this.lost(code);
          return;
        }
        // Closed while opening (before or just after Welcome): this open fails.
        closedEarly = code;
        welcomed = null;
        early = null;
        refused?.(new ConnectionClosed(code));
      },
    };
    try {
      socket = await openSocket(Ctor, this.url, token, this.opts.openTimeoutMs, handlers);
    } catch (refusal) {
      early = null;
      throw upgradeError(refusal as UpgradeRefusal);
    }
    const timer = setTimeout(() => refused?.(new ArqonError('no Welcome within the open timeout')), this.opts.openTimeoutMs);
    try {
      this.welcome = await welcome;
    } catch (error) {
      early = null;
      socket.close();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    if (closedEarly !== null) throw new ConnectionClosed(closedEarly);
    if (this.closing) {
      early = null;
      socket.close(1000);
      throw new ConnectionClosed(1000, 'closed by client');
    }
    this.socket = socket;
    this.closeCode = null;
    const held: Envelope[] = early ?? [];
    early = null;
    for (const envelope of held) {
      if (socket !== this.socket) break; // a held Drain closed it
      this.dispatch(envelope);
    }
    const interval = Math.max(this.welcome.heartbeatIntervalMs, 100);
    this.heartbeat = setInterval(() => this.sendRaw(encodeEnvelope({ case: 'heartbeat', value: {} })), interval);
    this.scheduleRefresh();
  }

  /** The current socket ended (`code`): fail what was pending, then reconnect unless that is final. */
  private lost(code: number): void {
    this.socket = null;
    this.closeCode = code;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.failPending(new ConnectionClosed(code));
    if (this.closing) return;
    this.emit('disconnected', { code });
    if (!this.opts.reconnect || FATAL_CLOSE_CODES.has(code)) {
      this.log.warn(`arqon: connection closed with ${code}; not reconnecting`);
      this.finish(code);
      return;
    }
    if (!this.reconnecting) void this.reconnectLoop();
  }

  private async reconnectLoop(): Promise<void> {
    this.reconnecting = true;
    let attempt = 0;
    try {
      while (!this.closing) {
        const wait = this.policy.nextWait(attempt);
        attempt += 1;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, wait);
          this.wakeReconnect = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        this.wakeReconnect = null;
        if (this.closing) return;
        if (this.urls.length > 1) this.urlIndex = (this.urlIndex + 1) % this.urls.length;
        try {
          await this.open();
          await this.rejoin();
          this.reconnects += 1;
          this.reconnecting = false;
          for (const waiter of this.openWaiters.splice(0)) waiter.resolve();
          this.emit('connected', this.welcome as Welcome);
          return;
        } catch (error) {
          if (error instanceof AuthError || (error instanceof ConnectionClosed && error.code !== null && FATAL_CLOSE_CODES.has(error.code))) {
            this.log.warn('arqon: reconnect refused: the token is no longer accepted');
            this.finish(error instanceof ConnectionClosed ? error.code : this.closeCode);
            return;
          }
          if (error instanceof Unavailable) this.policy.serverAsked(error.retryAfterMs);
          this.log.info(`arqon: reconnect attempt ${attempt} failed: ${(error as Error).name}`);
          if (this.socket) this.socket.close();
        }
      }
    } finally {
      this.reconnecting = false;
    }
  }

  /** Each room again, from where the client was: the server sends what was missed. */
  private async rejoin(): Promise<void> {
    for (const [room, metadata] of this.rooms) {
      this.roster.set(room, new Map());
      await this.send({ case: 'join', value: { room, metadata, since: this.cursor(room).since() } }, 'reply');
    }
  }

  private cursor(room: string): RoomCursor {
    let cursor = this.cursors.get(room);
    if (!cursor) this.cursors.set(room, (cursor = new RoomCursor()));
    return cursor;
  }

  /** Closes the session for good (no reconnect). */
  close(): void {
    if (this.closing) return;
    this.socket?.close(1000);
    this.socket = null;
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.heartbeat = null;
    this.failPending(new ConnectionClosed(1000, 'closed by client'));
    this.finish(1000);
  }

  private finish(code: number | null): void {
    this.closing = true;
    this.wakeReconnect?.();
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    const error = new ConnectionClosed(code);
    for (const waiter of this.openWaiters.splice(0)) waiter.reject(error);
    for (const inbox of [this.messageInbox, this.presenceInbox, this.recoveryInbox, this.errorInbox, this.governanceInbox, ...this.roomInboxes.values()]) {
      inbox.close(error);
    }
    this.emit('closed', { code });
  }

  private failPending(error: Error): void {
    for (const pending of this.pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.pending.clear();
  }

  // ---- token refresh -----------------------------------------------------------------------

  private scheduleRefresh(): void {
    if (this.refreshTimer) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const refresher = this.opts.refreshToken ?? (typeof this.tokenSource === 'function' ? this.tokenSource : undefined);
    const exp = tokenExpiryMs(this.token);
    if (!refresher || exp === null || this.closing) return;
    const delay = refreshDelayMs(exp, Date.now(), this.opts.refreshAheadMs);
    this.refreshTimer = setTimeout(() => {
      void (async () => {
        try {
          await this.refresh(await refresher());
        } catch (error) {
          this.log.warn(`arqon: token refresh failed: ${(error as Error).name}`);
          this.emit('error', error instanceof ArqonError ? error : new ArqonError('token refresh failed'));
        }
      })();
    }, Math.min(delay, 2_147_483_647));
  }

  /** Sends a fresh token over the open socket; it is also used for later reconnects. */
  async refresh(token: string): Promise<void> {
    await this.request({ case: 'refresh', value: { token } });
    this.token = token;
    this.refreshedInBand = true;
    this.scheduleRefresh();
    this.emit('refreshed', { expiresAtMs: tokenExpiryMs(token) });
  }

  // ---- frames ------------------------------------------------------------------------------

  /** The envelopes of a frame: one, or a batch frame's (`arqon.v1.batch`), oldest first; none if it is undecodable. */
  private decode(data: unknown): Envelope[] {
    const bytes = frameBytes(data);
    if (!bytes) {
      this.log.warn('arqon: the server sent a text frame');
      return [];
    }
    let envelope: Envelope;
    try {
      envelope = fromBinary(EnvelopeSchema, bytes);
    } catch {
      this.log.warn('arqon: undecodable frame from the server');
      return [];
    }
    if (envelope.body.case !== 'batch') return [envelope];
    const inner = envelope.body.value.envelopes;
    if (!inner.some((e) => e.body.case === 'batch')) return inner;
    this.log.warn('arqon: a batch inside a batch from the server; dropped it');
    return inner.filter((e) => e.body.case !== 'batch');
  }

  private sendRaw(bytes: Uint8Array): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== 1) return false;
    socket.send(bytes);
    return true;
  }

  private dispatch(envelope: Envelope): void {
    const body = envelope.body;
    let correlation = envelope.header?.correlationId ?? '';
    if (body.case === 'error' && !correlation && this.pending.size === 1) {
      // An error that answers no request fails the only pending one: unambiguous (specs/protocol.md).
      correlation = this.pending.keys().next().value as string;
    }
    const pending = this.pending.get(correlation);
    if (
      pending &&
      (body.case === 'error' ||
        (pending.kind === 'reply' && (body.case === 'ack' || body.case === 'pong')) ||
        (pending.kind === 'presence' && body.case === 'presenceUpdate'))
    ) {
      this.pending.delete(correlation);
      clearTimeout(pending.timer);
      if (body.case === 'error') pending.reject(serverError(body.value));
      else pending.resolve(envelope);
      return;
    }
    switch (body.case) {
      case 'error': {
        const error = serverError(body.value);
        this.log.warn(`arqon: server error ${error.codeName}`);
        this.errorInbox.put(error);
        this.emit('error', error);
        return;
      }
      case 'message': {
        const m = body.value;
        const h = envelope.header;
        const cursor = this.cursors.get(m.room);
        if (cursor && !cursor.onMessage(m.epoch, m.offset)) return; // seen already: never twice
        const payload = m.payload;
        const message: Message = {
          room: m.room,
          payload,
          contentType: m.contentType,
          tenantId: h?.tenantId ?? '',
          senderUserId: h?.senderUserId ?? '',
          senderSessionId: h?.senderSessionId ?? '',
          twistId: h?.twistId ?? '',
          timestampUs: h?.timestampUs ?? 0n,
          messageId: h?.messageId ?? '',
          offset: m.offset,
          epoch: m.epoch,
          get text() {
            return decoder.decode(payload);
          },
        };
        this.messageInbox.put(message);
        this.roomInboxes.get(m.room)?.put(message);
        this.emit('message', message);
        return;
      }
      case 'recovery': {
        const r = body.value;
        this.cursor(r.room).onRecovery(r.count, r.position ? { offset: r.position.offset, epoch: r.position.epoch } : undefined);
        const recovery: Recovery = { room: r.room, recovered: r.recovered, truncated: r.truncated, count: r.count };
        this.recoveryInbox.put(recovery);
        this.emit('recovery', recovery);
        return;
      }
      case 'presenceUpdate': {
        const update = body.value;
        const members = update.members.map(toMember);
        let room = this.roster.get(update.room);
        if (!room) this.roster.set(update.room, (room = new Map()));
        for (const member of members) room.set(member.sessionId, member);
        this.presenceEvent({ kind: update.kind === PresenceUpdateKind.SNAPSHOT ? 'snapshot' : 'join', room: update.room, members });
        return;
      }
      case 'presenceLeave': {
        const leave = body.value;
        const room = this.roster.get(leave.room);
        const gone = room?.get(leave.sessionId);
        room?.delete(leave.sessionId);
        const member = gone ?? { userId: leave.userId, sessionId: leave.sessionId, nodeId: '', joinedAtUs: 0n, metadata: {} };
        this.presenceEvent({ kind: 'leave', room: leave.room, members: [member] });
        return;
      }
      case 'drain': {
        // The node is going away: leave now, come back (elsewhere) no sooner than its hint.
        this.log.info('arqon: the server asked to reconnect elsewhere');
        this.policy.serverAsked(body.value.reconnectAfterMs);
        this.emit('drain', { reason: body.value.reason, reconnectAfterMs: body.value.reconnectAfterMs });
        this.socket?.close(1000);
        return;
      }
      default:
        if ((DOWNSTREAM_BODIES as readonly string[]).includes(body.case ?? '')) {
          this.governanceInbox.put(envelope);
          this.emit('governance', envelope);
        } else {
          this.log.debug(`arqon: ignoring ${body.case}`);
        }
    }
  }

  private presenceEvent(event: PresenceEvent): void {
    this.presenceInbox.put(event);
    this.emit('presence', event);
  }

  // ---- requests ----------------------------------------------------------------------------

  /** Waits until a session is open (during a reconnect), bounded by the request timeout. */
  private async whenOpen(): Promise<void> {
    if (this.closing) throw new ConnectionClosed(this.closeCode);
    if (this.socket && !this.reconnecting) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new ConnectionClosed(this.closeCode, 'not reconnected within the request timeout')), this.opts.requestTimeoutMs);
      this.openWaiters.push({
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
    });
  }

  /** Sends `body` once a session is open and waits for its reply (Ack, Pong, PresenceUpdate or Error). */
  async request(body: BodyInit, kind: 'reply' | 'presence' = 'reply', twistId?: string): Promise<Envelope> {
    await this.whenOpen();
    return this.send(body, kind, twistId);
  }

  private send(body: BodyInit, kind: 'reply' | 'presence', twistId?: string): Promise<Envelope> {
    this.ids += 1;
    const correlationId = `c-${this.ids}`;
    return new Promise<Envelope>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(correlationId);
        reject(new ArqonError(`no reply to ${body.case} within ${this.opts.requestTimeoutMs} ms`));
      }, this.opts.requestTimeoutMs);
      this.pending.set(correlationId, { kind, resolve, reject, timer });
      if (!this.sendRaw(encodeEnvelope(body, twistId ? { correlationId, twistId } : { correlationId }))) {
        this.pending.delete(correlationId);
        clearTimeout(timer);
        reject(new ConnectionClosed(this.closeCode));
      }
    });
  }

  /** Joins `room`; other members see `metadata` in presence. The join carries the room's position
   * (`since`), so a rejoin gets what was missed and nothing twice. */
  async join(room: string, metadata: Record<string, string> = {}): Promise<void> {
    const meta = { ...metadata };
    if (!this.roomInboxes.has(room)) this.roomInboxes.set(room, new Inbox(this.opts.inboxSize));
    this.roster.set(room, new Map());
    await this.request({ case: 'join', value: { room, metadata: meta, since: this.cursor(room).since() } });
    this.rooms.set(room, meta);
  }

  /** Leaves `room`. */
  async leave(room: string): Promise<void> {
    await this.request({ case: 'leave', value: { room } });
    this.rooms.delete(room);
    this.cursors.delete(room);
    this.roster.delete(room);
  }

  /** Publishes to `room`; a string is sent as UTF-8 text. Throws PolicyBlocked, RateLimited, … when refused. */
  async publish(room: string, data: string | Uint8Array, options: { contentType?: string; twistId?: string } = {}): Promise<void> {
    const text = typeof data === 'string';
    const payload = text ? encoder.encode(data) : data;
    const contentType = options.contentType ?? (text ? 'text/plain; charset=utf-8' : 'application/octet-stream');
    await this.request({ case: 'publish', value: { room, payload, contentType } }, 'reply', options.twistId);
  }

  /** Round-trips a Ping; resolves with the milliseconds it took. */
  async ping(): Promise<number> {
    const started = Date.now();
    await this.request({ case: 'ping', value: { nonce: BigInt(this.ids + 1) } });
    return Date.now() - started;
  }

  /** The members of `room` as this client last heard them (no round trip), by session id. */
  members(room: string): Member[] {
    return [...(this.roster.get(room)?.values() ?? [])].sort((a, b) => (a.sessionId < b.sessionId ? -1 : a.sessionId > b.sessionId ? 1 : 0));
  }

  /** Asks the server for `room`'s full member list, following pages until the last. */
  async presence(room: string, pageSize = 0): Promise<Member[]> {
    const members: Member[] = [];
    let pageToken = '';
    for (;;) {
      const reply = await this.request({ case: 'presenceRequest', value: { room, pageSize, pageToken } }, 'presence');
      if (reply.body.case !== 'presenceUpdate') throw new ProtocolError(`expected PresenceUpdate, got ${reply.body.case}`);
      members.push(...reply.body.value.members.map(toMember));
      pageToken = reply.body.value.nextPageToken;
      if (!pageToken) return members;
    }
  }

  // ---- streams -----------------------------------------------------------------------------

  private roomInbox(room: string): Inbox<Message> {
    let inbox = this.roomInboxes.get(room);
    if (!inbox) this.roomInboxes.set(room, (inbox = new Inbox(this.opts.inboxSize)));
    return inbox;
  }

  /** Delivered messages (of every joined room, or of `room`) until the client closes. */
  messages(room?: string): AsyncIterable<Message> {
    return room === undefined ? this.messageInbox : this.roomInbox(room);
  }

  /** The next delivered message (of `room` if given), waiting at most `timeoutMs`. */
  nextMessage(options: { room?: string; timeoutMs?: number } = {}): Promise<Message> {
    return (options.room === undefined ? this.messageInbox : this.roomInbox(options.room)).next(options.timeoutMs);
  }

  /** Presence snapshots, joins and leaves of the joined rooms. */
  presenceEvents(): AsyncIterable<PresenceEvent> {
    return this.presenceInbox;
  }

  nextPresence(timeoutMs?: number): Promise<PresenceEvent> {
    return this.presenceInbox.next(timeoutMs);
  }

  /** The next join answered from history (a first join reports recovered=false, count=0). */
  nextRecovery(timeoutMs?: number): Promise<Recovery> {
    return this.recoveryInbox.next(timeoutMs);
  }

  /** The next server error that answered no request. */
  nextError(timeoutMs?: number): Promise<ArqonError> {
    return this.errorInbox.next(timeoutMs);
  }

  /** Downstream governance envelopes (see the `arqon-sdk/governance` module for typed helpers). */
  governanceEvents(): AsyncIterable<Envelope> {
    return this.governanceInbox;
  }

  nextGovernance(timeoutMs?: number): Promise<Envelope> {
    return this.governanceInbox.next(timeoutMs);
  }
}

/** The typed error for a failed upgrade. */
function upgradeError(refusal: UpgradeRefusal): ArqonError {
  if (refusal.status === 401) return new AuthError(401, refusal.body);
  if (refusal.status === 503) return new Unavailable(refusal.retryAfterMs);
  if (refusal.status !== null) return new ArqonError(`upgrade refused with HTTP ${refusal.status}`);
  return new ConnectionClosed(refusal.closeCode, refusal.reason);
}

/** Connects to `url` (`ws://host:port/v1/socket`, or a list to rotate through on reconnects) with a
 * JWT or a function returning one. Rejects with AuthError on HTTP 401 and Unavailable on HTTP 503
 * (Node; a browser sees ConnectionClosed(1006) for both). */
export async function connect(url: string | string[], token: TokenSource, options: ClientOptions = {}): Promise<Client> {
  return new Client(url, token, options).start();
}


// Real parts for the integration and browser tests: arq nodes (embedded or NATS spine) and a private nats-server, as sdk/python/tests/conftest.py starts them.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ARQ, BAD_WORDS, NATS_SERVER } from './paths.js';
import type { Client, ClientEvents } from '../../src/index.js';

export const STARTUP_MS = 30_000;
export type Spine = 'embedded' | 'nats';

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** Resolves once something accepts TCP connections on `port` (a readiness probe, bounded). */
async function waitForPort(port: number, deadline: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.end();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${port}`);
    await new Promise((r) => setTimeout(r, 20)); // a poll interval of a readiness probe, not a synchronisation sleep
  }
}

/** Resolves with the first value `pick` returns for a line of `proc`'s stdout, or rejects after `ms`. */
function firstLine<T>(proc: ChildProcess, pick: (line: string) => T | undefined, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => {
      lines.close();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    const exited = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`${what}: the process exited with ${code}`));
    };
    proc.once('exit', exited);
    lines.on('line', (line) => {
      const value = pick(line);
      if (value !== undefined) {
        clearTimeout(timer);
        proc.off('exit', exited);
        lines.close();
        proc.stdout!.resume();
        resolve(value);
      }
    });
  });
}

/** Resolves when `proc` exits (at once when it already has). */
function exited(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => proc.once('exit', () => resolve()));
}

/** A real nats-server with JetStream on a free loopback port (never the shared one on 4222). */
export class NatsServer {
  proc: ChildProcess | null = null;
  port = 0;
  readonly store = mkdtempSync(join(tmpdir(), 'arqon-ts-nats-'));

  async start(): Promise<this> {
    this.port = await freePort();
    this.proc = spawn(NATS_SERVER, ['-js', '-sd', this.store, '-a', '127.0.0.1', '-p', String(this.port)], { stdio: 'ignore' });
    await waitForPort(this.port, Date.now() + STARTUP_MS);
    return this;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    if (this.proc) {
      this.proc.kill('SIGKILL');
      await exited(this.proc);
    }
    rmSync(this.store, { recursive: true, force: true });
  }
}

/** A real ArqonBus node: `arq serve --config <file> --listen 127.0.0.1:0`, its address read from its output. */
export class Node {
  proc: ChildProcess | null = null;
  port = 0;
  readonly config: string;

  constructor(
    readonly dir: string,
    keys: string,
    nats: NatsServer | null,
    readonly name: string,
    extra = '',
  ) {
    this.config = join(dir, `${name}.toml`);
    const spine = nats ? `kind = "nats"\nnats_urls = ["${nats.url}"]` : 'kind = "embedded"';
    writeFileSync(
      this.config,
      `[node]
id = "${name}"
listen = "127.0.0.1:0"
dev = true
drain_timeout = "1s"

[auth]
jwks_file = "${join(keys, 'jwks.json')}"
issuer = "arqon-dev"
audience = "arqon"
# A short leeway, so a session whose token expires without a refresh is closed (4001) within a test.
leeway = "1s"

[spine]
${spine}

[session]
heartbeat_interval = "1s"
idle_timeout = "5s"

[policy]
global = ["${BAD_WORDS}"]
# Wall-clock budget: generous, so a busy CI machine never times out a clean message (fail closed).
time_budget = "250ms"

# Proposals that pass the rules are approved without an operator, so a test sees an Approval.
[governance]
auto_approve = true

[telemetry]
log_format = "json"
log_level = "warn"
${extra}`,
    );
  }

  async start(): Promise<this> {
    this.proc = spawn(ARQ, ['--color', 'never', 'serve', '--config', this.config, '--listen', '127.0.0.1:0'], {
      cwd: this.dir,
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const port = await firstLine(this.proc, (line) => /socket:\s+ws:\/\/127\.0\.0\.1:(\d+)\//.exec(line)?.[1], STARTUP_MS, `${this.name} to listen`);
    this.port = Number(port);
    return this;
  }

  /** The WebSocket URL clients connect to. */
  get url(): string {
    return `ws://127.0.0.1:${this.port}/v1/socket`;
  }

  get http(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** SIGTERM: the node drains (every session gets Drain) and exits; resolves when it has. */
  async drain(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    await exited(this.proc);
  }

  async stop(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    const timer = setTimeout(() => this.proc?.kill('SIGKILL'), 15_000);
    await exited(this.proc);
    clearTimeout(timer);
  }
}

/** One running bus for a test file: dev keys, a token mint, nodes, and a nats-server for the NATS spine. */
export class Bus {
  readonly dir = mkdtempSync(join(tmpdir(), 'arqon-ts-bus-'));
  readonly keys = join(this.dir, 'keys');
  nats: NatsServer | null = null;
  readonly nodes: Node[] = [];

  /** `extra`: TOML appended to each node's config (sections after `[telemetry]`). */
  constructor(
    readonly spine: Spine,
    readonly extra = '',
  ) {}

  async start(nodes = 1): Promise<this> {
    const made = spawnSync(ARQ, ['--color', 'never', 'auth', 'keys', 'gen', '--out', this.keys], { encoding: 'utf8' });
    if (made.status !== 0) throw new Error(`arq auth keys gen failed: ${made.stderr}`);
    if (this.spine === 'nats') this.nats = await new NatsServer().start();
    for (let i = 1; i <= nodes; i += 1) this.nodes.push(await new Node(this.dir, this.keys, this.nats, `node-${i}`, this.extra).start());
    return this;
  }

  get url(): string {
    return (this.nodes[0] as Node).url;
  }

  /** A signed dev token (`arq auth gen`). */
  token(sub = 'alice', { tenant = 'acme', role = 'user', ttl = '1h' } = {}): string {
    const out = spawnSync(ARQ, ['--color', 'never', 'auth', 'gen', '--keys', this.keys, '--tenant', tenant, '--sub', sub, '--role', role, '--ttl', ttl], {
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`arq auth gen failed: ${out.stderr}`);
    return out.stdout.trim();
  }

  async stop(): Promise<void> {
    for (const node of this.nodes) await node.stop();
    await this.nats?.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Resolves with the first `kind` event of `client`, or rejects after `timeoutMs`. */
export function nextEvent<K extends keyof ClientEvents>(client: Client, kind: K, timeoutMs = 10_000): Promise<ClientEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${kind} event within ${timeoutMs} ms`)), timeoutMs);
    const off = client.on(kind, (event) => {
      clearTimeout(timer);
      off();
      resolve(event);
    });
  });
}

/** Waits for the first event of a stream that `accept` takes; each wait is bounded by `timeoutMs`. */
export async function until<T>(next: (timeoutMs: number) => Promise<T>, accept: (item: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const item = await next(Math.max(1, deadline - Date.now()));
    if (accept(item)) return item;
  }
}

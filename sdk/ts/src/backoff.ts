/** The reconnect policy of the Rust client: exponential backoff, a 0–50 % jitter, and the server's floor (Retry-After, Drain). */

/** Reconnect backoff: `initialMs`, doubling per attempt, at most `maxMs` (the Rust client's defaults: 50 ms, 5 s). */
export interface Backoff {
  initialMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<Backoff> = { initialMs: 50, maxMs: 5_000 };

/** The wait before reconnect attempt `attempt` (0-based), before jitter. */
export function backoffDelay(backoff: Backoff, attempt: number): number {
  return Math.min(backoff.maxMs, backoff.initialMs * 2 ** Math.min(attempt, 16));
}

/** A seeded generator of floats in [0, 1) (xorshift32), for reproducible jitter in tests. */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9; // xorshift needs a non-zero state
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x1_0000_0000;
  };
}

/** `waitMs` plus a uniform 0–50 % of it: never less than the wait, so it never undercuts the server's ask. */
export function stretch(waitMs: number, random: () => number): number {
  return waitMs + Math.floor(random() * (Math.floor(waitMs / 2) + 1));
}

/** When to try to reconnect: the attempt's backoff, or what the server last asked for if that is
 * longer, stretched by the jitter. The server's floor is used once. */
export class ReconnectPolicy {
  private notBeforeMs: number | null = null;

  constructor(
    private readonly backoff: Backoff = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {}

  /** The server's answer to the last attempt or the last session: a wait it asked for (a 503's
   * Retry-After, a Drain's reconnectAfterMs), or null. */
  serverAsked(waitMs: number | null): void {
    this.notBeforeMs = waitMs;
  }

  /** The wait before attempt `attempt` (0-based). */
  nextWait(attempt: number): number {
    const floor = this.notBeforeMs ?? 0;
    this.notBeforeMs = null;
    return stretch(Math.max(backoffDelay(this.backoff, attempt), floor), this.random);
  }
}

/** `Retry-After` in delay-seconds (the form the Shield sends) as milliseconds; an HTTP date or garbage gives null. */
export function parseRetryAfter(value: string | null | undefined): number | null {
  if (value === null || value === undefined || !/^\s*\d+\s*$/.test(value)) return null;
  return Number(value.trim()) * 1000;
}

/** A bounded async queue that drops the oldest item when full (counting drops), for messages and events. */
import { ConnectionClosed } from './errors.js';

type Waiter<T> = { resolve: (item: T) => void; reject: (error: Error) => void; timer?: ReturnType<typeof setTimeout> };

export class Inbox<T> {
  private readonly items: T[] = [];
  private readonly waiters: Waiter<T>[] = [];
  private closedWith: Error | null = null;
  /** Items dropped because the inbox was full (the oldest go first). */
  dropped = 0;

  constructor(private readonly size: number) {}

  put(item: T): void {
    const waiter = this.waiters.shift();
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.resolve(item);
      return;
    }
    if (this.items.length >= this.size) {
      this.items.shift();
      this.dropped += 1;
    }
    this.items.push(item);
  }

  /** The next item; rejects with a time-out error after `timeoutMs`, or with the close error once closed and empty. */
  next(timeoutMs?: number): Promise<T> {
    if (this.items.length > 0) return Promise.resolve(this.items.shift() as T);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise<T>((resolve, reject) => {
      const waiter: Waiter<T> = { resolve, reject };
      if (timeoutMs !== undefined) {
        waiter.timer = setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`nothing arrived within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.waiters.push(waiter);
    });
  }

  /** Ends the inbox: waiters and later `next` calls (once empty) reject with `error`. */
  close(error: Error = new ConnectionClosed(1000, 'closed by client')): void {
    this.closedWith = error;
    for (const waiter of this.waiters.splice(0)) {
      if (waiter.timer) clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  /** Yields items until the inbox closes. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      try {
        yield await this.next();
      } catch (error) {
        if (error === this.closedWith) return;
        throw error;
      }
    }
  }
}

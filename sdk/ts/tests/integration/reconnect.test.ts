// Reconnects and recovery against real nodes: a dropped socket on the embedded spine, and a SIGTERM'd node (Drain) on NATS (AC-SDKTS-5, AC-SDKTS-6).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, RateLimited } from '../../src/index.js';
import type { Client } from '../../src/index.js';
import { Bus, nextEvent } from '../helpers/bus.js';

const WAIT = 20_000;

/** Publishes each text in order, waiting out a rate limit as the server asks (its retry-after). */
async function publishAll(client: Client, room: string, texts: string[]): Promise<void> {
  for (const text of texts) {
    for (;;) {
      try {
        await client.publish(room, text);
        break;
      } catch (error) {
        if (!(error instanceof RateLimited)) throw error;
        await new Promise((r) => setTimeout(r, error.retryAfterMs)); // the server's own retry-after
      }
    }
  }
}

/** The next `n` texts delivered to `room`. */
async function receive(client: Client, room: string, n: number): Promise<string[]> {
  const got: string[] = [];
  for (let i = 0; i < n; i += 1) got.push((await client.nextMessage({ room, timeoutMs: WAIT })).text);
  return got;
}

/** Drops the client's socket from under it (a TCP reset, no close frame), as a network failure would. */
function dropSocket(client: Client): void {
  (client as unknown as { socket: { terminate(): void } }).socket.terminate();
}

describe('on the embedded spine', () => {
  const bus = new Bus('embedded');
  const clients: Client[] = [];
  before(() => bus.start());
  after(async () => {
    for (const c of clients) c.close();
    await bus.stop();
  });

  test('AC-SDKTS-6 [embedded]: a subscriber whose socket drops gets every missed message exactly once, in order', async () => {
    const sub = await connect(bus.url, bus.token('bob'), { seed: 7, backoff: { initialMs: 400, maxMs: 2_000 } });
    const pub = await connect(bus.url, bus.token('alice'));
    clients.push(sub, pub);
    await sub.join('history');
    const first = await sub.nextRecovery(WAIT);
    assert.deepEqual([first.recovered, first.count], [false, 0], 'a first join has nothing to recover');
    await pub.join('history');
    await publishAll(pub, 'history', ['before']);
    assert.equal((await sub.nextMessage({ room: 'history', timeoutMs: WAIT })).text, 'before');
    const reconnected = nextEvent(sub, 'connected', WAIT);
    dropSocket(sub);
    const missed = Array.from({ length: 60 }, (_, i) => `missed-${String(i).padStart(3, '0')}`);
    await publishAll(pub, 'history', missed);
    await reconnected;
    const again = await sub.nextRecovery(WAIT);
    assert.equal(again.room, 'history');
    assert.ok(again.recovered, 'every missed message is still in the history');
    assert.deepEqual(await receive(sub, 'history', missed.length), missed, 'each once, in order');
    await publishAll(pub, 'history', ['after']);
    const live = await sub.nextMessage({ room: 'history', timeoutMs: WAIT });
    assert.equal(live.text, 'after', 'no duplicate came before the live message');
    assert.ok(live.offset > 0n && live.epoch !== '');
    assert.equal(sub.reconnects, 1);
  });
});

describe('on the nats spine, two nodes', () => {
  const bus = new Bus('nats');
  const clients: Client[] = [];
  before(() => bus.start(2));
  after(async () => {
    for (const c of clients) c.close();
    await bus.stop();
  });

  test('AC-SDKTS-5, AC-SDKTS-6 [nats]: SIGTERM one node: Drain, the client moves to the other node, rejoins and recovers once, in order', async () => {
    const [one, two] = bus.nodes;
    assert.ok(one && two);
    const sub = await connect([one.url, two.url], bus.token('bob'), { seed: 3 });
    const pub = await connect(two.url, bus.token('alice'));
    clients.push(sub, pub);
    assert.equal(sub.welcome?.nodeId, 'node-1');
    await sub.join('moving', { device: 'laptop' });
    await pub.join('moving');
    await publishAll(pub, 'moving', ['m-0']);
    assert.equal((await sub.nextMessage({ room: 'moving', timeoutMs: WAIT })).text, 'm-0');

    const drained = nextEvent(sub, 'drain', WAIT).then((d) => ({ at: Date.now(), reconnectAfterMs: d.reconnectAfterMs }));
    const disconnected = nextEvent(sub, 'disconnected', WAIT);
    const connected = nextEvent(sub, 'connected', WAIT).then(() => Date.now());
    const exited = one.drain();
    const drain = await drained;
    const drop = await disconnected;
    // Published while the subscriber is between nodes.
    const gap = Array.from({ length: 30 }, (_, i) => `m-${i + 1}`);
    await publishAll(pub, 'moving', gap);
    const back = await connected;
    assert.equal(sub.welcome?.nodeId, 'node-2', `reconnected to the other node (socket closed with ${drop.code})`);
    assert.ok(back - drain.at >= drain.reconnectAfterMs, `back after ${back - drain.at} ms, the Drain asked for ${drain.reconnectAfterMs} ms`);
    // The rejoin carried the metadata: the publisher sees bob on node-2 with it.
    const members = await pub.presence('moving');
    assert.deepEqual(members.filter((m) => m.userId === 'bob').map((m) => [m.nodeId, m.metadata.device]), [['node-2', 'laptop']]);
    assert.deepEqual(await receive(sub, 'moving', gap.length), gap, 'every message of the gap, once, in order');
    await publishAll(pub, 'moving', ['live']);
    assert.equal((await sub.nextMessage({ room: 'moving', timeoutMs: WAIT })).text, 'live', 'then live traffic, no duplicates');
    assert.equal(sub.reconnects, 1);
    await exited;
  });
});

// The SDK takes batch frames from a real arq node on both spines (AC-SDKTS-14): it offers
// `arqon.v1.batch`, and every envelope of a batch comes out once, as its own message.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BATCH_SUBPROTOCOL, connect } from '../../src/index.js';
import type { Client, Message } from '../../src/index.js';
import { Bus } from '../helpers/bus.js';
import type { Spine } from '../helpers/bus.js';

const BURST = 300;
const WAIT = 30_000;
/** Room for the burst: the default per-connection publish bucket (burst 200) and outbound queue (256) are smaller. */
const ROOMY = `
[limits]
outbound_queue_depth = 4096

[limits.tenant_defaults]
connection_publish = { per_sec = 10000, burst = 10000 }
`;

/** The sum of a Prometheus counter's samples in `text` (any labels), or null when it is absent. */
function counter(text: string, name: string): number | null {
  let total: number | null = null;
  for (const line of text.split('\n')) {
    const match = new RegExp(`^${name}(?:_total)?(?:\\{[^}]*\\})?\\s+(\\S+)`).exec(line);
    if (match) total = (total ?? 0) + Number(match[1]);
  }
  return total;
}

for (const spine of ['embedded', 'nats'] as Spine[]) {
  describe(`batch frames on the ${spine} spine`, () => {
    const bus = new Bus(spine, ROOMY);
    const clients: Client[] = [];
    const open = async (sub: string) => {
      const client = await connect(bus.url, bus.token(sub), { requestTimeoutMs: WAIT, seed: 14 });
      clients.push(client);
      return client;
    };
    before(() => bus.start());
    after(async () => {
      for (const c of clients) c.close();
      await bus.stop();
    });

    // AC-SDKTS-14
    test(`AC-SDKTS-14 [${spine}]: a burst of ${BURST} publishes reaches the subscriber once each, some of it in batch frames`, async () => {
      const subscriber = await open('sub');
      const publisher = await open('pub');
      assert.equal((subscriber as unknown as { socket: { protocol: string } }).socket.protocol, BATCH_SUBPROTOCOL, 'the server echoed arqon.v1.batch');
      await subscriber.join('burst');
      await publisher.join('burst');

      const seen = new Map<string, number>();
      let onMarker: (() => void) | null = null;
      const marker = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the marker did not arrive within ${WAIT} ms; ${seen.size} distinct payloads seen`)), WAIT);
        onMarker = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      subscriber.onMessage('burst', (m: Message) => {
        seen.set(m.text, (seen.get(m.text) ?? 0) + 1);
        if (m.text === 'marker') onMarker?.();
      });

      const payloads = Array.from({ length: BURST }, (_, i) => `m-${i}`);
      await Promise.all(payloads.map((p) => publisher.publish('burst', p)));
      // Every publish was acked; one more after them all, so nothing of the burst is still in flight when it lands.
      await publisher.publish('burst', 'marker');
      await marker;

      const missing = payloads.filter((p) => !seen.has(p));
      const twice = [...seen].filter(([, n]) => n !== 1).map(([p]) => p);
      assert.deepEqual(missing, [], 'every message arrived');
      assert.deepEqual(twice, [], 'no message arrived twice');
      assert.equal(seen.size, BURST + 1, 'nothing else arrived');

      const response = await fetch(`${bus.url.replace(/^ws/, 'http').replace(/\/v1\/socket$/, '')}/metrics`);
      assert.equal(response.status, 200);
      const batched = counter(await response.text(), 'arqonbus_shield_batched_envelopes');
      assert.ok(batched !== null, 'the node exports arqonbus_shield_batched_envelopes');
      assert.ok(batched >= 2, `the node packed envelopes into batch frames (arqonbus_shield_batched_envelopes = ${batched})`);
    });
  });
}

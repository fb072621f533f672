// The room cursor rule, the same cases as arqon_core::history::RoomCursor's test (AC-SDKTS-6).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RoomCursor } from '../../src/cursor.js';

test('AC-SDKTS-6: since, duplicates, recovered messages, the join point and a new epoch', () => {
  const cursor = new RoomCursor();
  assert.deepEqual(cursor.since(), { offset: 0n, epoch: '' }, 'a first join has an empty epoch');
  cursor.onRecovery(0, { epoch: 'e1', offset: 10n });
  assert.deepEqual(cursor.since(), { offset: 10n, epoch: 'e1' });
  assert.equal(cursor.onMessage('e1', 12n), true);
  assert.equal(cursor.onMessage('e1', 12n), false, 'a duplicate');
  assert.equal(cursor.onMessage('e1', 11n), false, 'older');
  // Reconnect: two recovered messages, then the join point 20.
  cursor.onRecovery(2, { epoch: 'e1', offset: 20n });
  assert.equal(cursor.onMessage('e1', 15n), true);
  assert.equal(cursor.onMessage('e1', 18n), true);
  assert.deepEqual(cursor.since(), { offset: 20n, epoch: 'e1' });
  assert.equal(cursor.onMessage('e1', 19n), false);
  // A new epoch: its offsets start again.
  cursor.onRecovery(1, { epoch: 'e2', offset: 3n });
  assert.equal(cursor.onMessage('e2', 2n), true);
  assert.deepEqual(cursor.since(), { offset: 3n, epoch: 'e2' });
  assert.equal(cursor.onMessage('', 0n), true, 'no history, no duplicates to find');
});

test('AC-SDKTS-6: a recovery without a position (no history) clears what was pending', () => {
  const cursor = new RoomCursor();
  cursor.onRecovery(0, { epoch: 'e1', offset: 5n });
  cursor.onRecovery(3, undefined);
  assert.deepEqual(cursor.since(), { offset: 5n, epoch: 'e1' });
  assert.equal(cursor.onMessage('e1', 6n), true);
  assert.deepEqual(cursor.since(), { offset: 6n, epoch: 'e1' });
});

test('AC-SDKTS-6: replaying a recovered stream twice delivers each offset once, in order', () => {
  const cursor = new RoomCursor();
  cursor.onRecovery(0, { epoch: 'e', offset: 0n });
  const seen: bigint[] = [];
  const deliver = (offsets: bigint[]) => {
    for (const o of offsets) if (cursor.onMessage('e', o)) seen.push(o);
  };
  deliver([1n, 2n, 3n]);
  // The socket dropped after 3; the server recovers from `since` and live traffic overlaps it.
  assert.deepEqual(cursor.since(), { offset: 3n, epoch: 'e' });
  cursor.onRecovery(3, { epoch: 'e', offset: 6n });
  deliver([4n, 5n, 6n, 5n, 6n, 7n]);
  assert.deepEqual(seen, [1n, 2n, 3n, 4n, 5n, 6n, 7n]);
});

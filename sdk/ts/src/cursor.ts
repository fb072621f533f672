/** A room's position across reconnects: the same rule as `arqon_core::history::RoomCursor` and Python's `_RoomCursor`. */

/** Where a client is in a room's history: the offset of the last message seen, and the history's epoch. */
export interface Position {
  offset: bigint;
  epoch: string;
}

/** What to send as `Join.since`, and which delivered messages the app has already seen. */
export class RoomCursor {
  /** Epoch and offset of the newest message seen (or the join point); null before any. */
  private position: { epoch: string; offset: bigint } | null = null;
  /** Recovered messages still to come, and the join point to take after them. */
  private pending: { left: number; point: bigint } | null = null;

  /** The position to join with: an empty epoch (offset 0) when there is none yet. */
  since(): Position {
    return this.position ? { offset: this.position.offset, epoch: this.position.epoch } : { offset: 0n, epoch: '' };
  }

  /** A `Recovery` arrived: `count` recovered messages follow, then the room is at `position` (absent: no history). */
  onRecovery(count: number, position: Position | undefined): void {
    if (!position) {
      this.pending = null;
      return;
    }
    const { epoch, offset } = position;
    if (!this.position || this.position.epoch !== epoch) {
      // A new history: offsets restart, and nothing before the join point is a duplicate.
      this.position = { epoch, offset: count === 0 ? offset : 0n };
    }
    if (count === 0) {
      this.advance(offset);
      this.pending = null;
    } else {
      this.pending = { left: count, point: offset };
    }
  }

  /** A message at (`epoch`, `offset`) arrived; false when the app has already seen it. Messages
   * without a position (a tenant without history) are always new. */
  onMessage(epoch: string, offset: bigint): boolean {
    if (!epoch) return true;
    const fresh = !this.position || this.position.epoch !== epoch || offset > this.position.offset;
    if (fresh) this.position = { epoch, offset };
    if (this.pending) {
      if (this.pending.left <= 1) {
        const { point } = this.pending;
        this.pending = null;
        this.advance(point);
      } else {
        this.pending = { left: this.pending.left - 1, point: this.pending.point };
      }
    }
    return fresh;
  }

  private advance(offset: bigint): void {
    if (this.position && offset > this.position.offset) this.position = { epoch: this.position.epoch, offset };
  }
}

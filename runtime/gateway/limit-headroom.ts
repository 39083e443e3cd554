/**
 * What this gateway last learned about each request-rate limit key (`ip:…`, `tenant:…`): how many
 * requests its current window still allowed when Redis last counted one, and how many of this
 * gateway's requests have been let through since without being counted yet. request-limits.ts
 * lets a large infer body be read and parsed before its limits are counted (they then go to Redis
 * with its reservation, one round trip less) only while every key of the request still has room
 * for it by that account; a key never counted, counted in a window that has ended, or out of room
 * is checked before the body, as always. Pure: the caller passes the clock.
 *
 * Other gateway replicas count against the same keys, so the room is an upper bound: a caller over
 * its limit can make each replica parse at most the room that replica last saw (Redis still refuses
 * every request over the limit, and counts each once).
 */
interface Room {
  /** Requests the window allowed after the last count this gateway saw. */
  remaining: number;
  /** When that window ends (epoch ms). */
  until: number;
  /** This gateway's requests let through on this room whose count has not come back yet. */
  outstanding: number;
}

/** Keys remembered at most; past it the oldest go (a forgotten key is checked first again). */
export const MAX_HEADROOM_KEYS = 10_000;

export class LimitHeadroom {
  private readonly rooms = new Map<string, Room>();

  /** Records a count of `key` by Redis: `remaining` requests left in a window that ends in `ttlMs`. */
  observe(key: string, remaining: number, ttlMs: number, now: number): void {
    const room = this.rooms.get(key);
    const until = now + Math.max(0, ttlMs);
    if (room) {
      // A new window: what was let through in the last one and never counted (a request whose
      // connection dropped before its limits ran) no longer takes room.
      if (now >= room.until) room.outstanding = 0;
      room.remaining = remaining;
      room.until = until;
      return;
    }
    if (this.rooms.size >= MAX_HEADROOM_KEYS) this.rooms.delete(this.rooms.keys().next().value!);
    this.rooms.set(key, { remaining, until, outstanding: 0 });
  }

  /**
   * Whether every key has room for one more request now; if so, that request is taken from each
   * key's room until {@link settle} is called for it (once its limits have been counted, or not).
   */
  take(keys: readonly string[], now: number): boolean {
    if (keys.length === 0) return false;
    for (const key of keys) {
      const room = this.rooms.get(key);
      if (!room || now >= room.until || room.remaining - room.outstanding < 1) return false;
    }
    for (const key of keys) this.rooms.get(key)!.outstanding++;
    return true;
  }

  /** Counts a request let through without looking at the room (a small body), until settled. */
  hold(keys: readonly string[]): void {
    for (const key of keys) {
      const room = this.rooms.get(key);
      if (room) room.outstanding++;
    }
  }

  /** Marks as counted (or failed) a request that {@link take} or {@link hold} let through. */
  settle(keys: readonly string[]): void {
    for (const key of keys) {
      const room = this.rooms.get(key);
      if (room && room.outstanding > 0) room.outstanding--;
    }
  }

  /** Keys remembered now (for tests). */
  get size(): number {
    return this.rooms.size;
  }
}

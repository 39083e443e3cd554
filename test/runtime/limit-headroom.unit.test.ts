// LimitHeadroom (runtime/gateway/limit-headroom.ts): when a large body may be parsed before its
// rate limits are counted, from the last counts this gateway saw. Pure; fed counts and a clock.
import { describe, expect, it } from "vitest";
import { LimitHeadroom, MAX_HEADROOM_KEYS } from "../../runtime/gateway/limit-headroom.js";

const KEYS = ["ip:127.0.0.1", "tenant:acme"];

describe("LimitHeadroom", () => {
  it("has no room for a key it has not counted, or whose window has ended", () => {
    const room = new LimitHeadroom();
    expect(room.take(KEYS, 0)).toBe(false);
    room.observe(KEYS[0]!, 10, 1_000, 0);
    expect(room.take(KEYS, 0)).toBe(false); // the tenant's key was never counted
    room.observe(KEYS[1]!, 10, 1_000, 0);
    expect(room.take(KEYS, 999)).toBe(true);
    expect(room.take(KEYS, 1_000)).toBe(false); // the window of the last count is over
    expect(room.take([], 0)).toBe(false);
  });

  it("lets through at most what the last count left, until those requests are counted", () => {
    const room = new LimitHeadroom();
    for (const key of KEYS) room.observe(key, 2, 60_000, 0);
    expect(room.take(KEYS, 1)).toBe(true);
    expect(room.take(KEYS, 1)).toBe(true);
    expect(room.take(KEYS, 1)).toBe(false); // both taken, neither counted yet
    // The first one's count comes back: one left in the window, one still outstanding.
    for (const key of KEYS) room.observe(key, 1, 59_000, 1);
    room.settle(KEYS);
    expect(room.take(KEYS, 2)).toBe(false);
    for (const key of KEYS) room.observe(key, 0, 59_000, 2);
    room.settle(KEYS);
    expect(room.take(KEYS, 3)).toBe(false); // at the limit: checked first from now on
  });

  it("counts a small body let through without looking at the room against it", () => {
    const room = new LimitHeadroom();
    for (const key of KEYS) room.observe(key, 1, 60_000, 0);
    room.hold(KEYS);
    expect(room.take(KEYS, 0)).toBe(false);
    room.settle(KEYS);
    expect(room.take(KEYS, 0)).toBe(true);
  });

  it("forgets requests never counted once their window has ended", () => {
    const room = new LimitHeadroom();
    for (const key of KEYS) room.observe(key, 1, 1_000, 0);
    expect(room.take(KEYS, 0)).toBe(true); // its connection drops: never counted, never settled
    expect(room.take(KEYS, 10)).toBe(false);
    for (const key of KEYS) room.observe(key, 5, 1_000, 1_000); // counted in the next window
    expect(room.take(KEYS, 1_001)).toBe(true);
    for (let n = 0; n < 4; n++) expect(room.take(KEYS, 1_001)).toBe(true);
    expect(room.take(KEYS, 1_001)).toBe(false);
  });

  it("needs room on every key of the request", () => {
    const room = new LimitHeadroom();
    room.observe(KEYS[0]!, 5, 60_000, 0);
    room.observe(KEYS[1]!, 0, 60_000, 0);
    expect(room.take(KEYS, 0)).toBe(false);
    expect(room.take([KEYS[0]!], 0)).toBe(true);
  });

  it("remembers a bounded number of keys, forgetting the oldest", () => {
    const room = new LimitHeadroom();
    for (let i = 0; i <= MAX_HEADROOM_KEYS; i++) room.observe(`ip:${i}`, 5, 60_000, 0);
    expect(room.size).toBe(MAX_HEADROOM_KEYS);
    expect(room.take(["ip:0"], 0)).toBe(false);
    expect(room.take([`ip:${MAX_HEADROOM_KEYS}`], 0)).toBe(true);
  });
});

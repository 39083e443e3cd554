import { describe, expect, it } from "vitest";
import { ApiKeyCache } from "../../runtime/gateway/api-key-cache.js";

describe("ApiKeyCache", () => {
  it("answers a resolved key until its TTL has passed, then asks again", () => {
    const cache = new ApiKeyCache(1_000);
    expect(cache.get("tp_live_a", 0)).toBeUndefined();
    cache.set("tp_live_a", "acme", 0);
    expect(cache.get("tp_live_a", 999)).toBe("acme");
    expect(cache.get("tp_live_b", 999)).toBeUndefined();
    expect(cache.get("tp_live_a", 1_000)).toBeUndefined();
    // Expired entries are dropped, not revived by a later clock.
    expect(cache.get("tp_live_a", 500)).toBeUndefined();
  });

  it("keeps nothing with a TTL of 0", () => {
    const cache = new ApiKeyCache(0);
    cache.set("tp_live_a", "acme", 0);
    expect(cache.get("tp_live_a", 0)).toBeUndefined();
  });

  it("stays bounded when many keys resolve within one TTL", () => {
    const cache = new ApiKeyCache(60_000);
    for (let i = 0; i <= 10_000; i++) cache.set(`tp_live_${i}`, "acme", 0);
    // The 10,001st key started the cache over: only it is left.
    expect(cache.get("tp_live_0", 1)).toBeUndefined();
    expect(cache.get("tp_live_10000", 1)).toBe("acme");
  });
});

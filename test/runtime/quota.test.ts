// QuotaStore against a real Redis: limits refuse with the right name and Retry-After, settle and
// release are idempotent and exact, and concurrent reserves from several connections never
// exceed a limit. No mocks; a unique prefix per test.
import { randomUUID } from "node:crypto";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { names, tenantKeys } from "../../runtime/shared/contracts/index.js";
import { QuotaStore, hashApiKey, windowsAt } from "../../runtime/shared/quota/index.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import { deleteQuotaKeys } from "./helpers/quota-keys.js";

const urls = serviceUrls();
let redis: Redis;
const prefixes: string[] = [];

/** A store on a fresh prefix with one tenant "acme" holding `limits`. */
async function storeWith(limits: Parameters<QuotaStore["writeTenant"]>[1], client = redis) {
  const prefix = uniqueName("quota");
  prefixes.push(prefix);
  const store = new QuotaStore(client, prefix);
  await store.writeTenant("acme", limits, [hashApiKey("key-1")]);
  return { store, prefix };
}

beforeAll(() => {
  redis = new Redis(urls.redisUrl);
});

afterAll(async () => {
  await deleteQuotaKeys(redis, prefixes);
  redis.disconnect();
});

// Mid-minute (12:00:30 UTC), so the minute window has 30 s left.
const NOW = Date.UTC(2025, 0, 15, 12, 0, 30);

/** Usage with `tokens` in both token windows, `requests` this minute and `inFlight` reservations. */
const usageOf = (tokens: number, requests: number, inFlight: number) => ({
  tokensToday: tokens,
  tokensThisMinute: tokens,
  requestsThisMinute: requests,
  inFlight,
});

/** A reservation refused by `limit` (at `limitValue`) with nothing remaining. */
const refusal = (limit: string, limitValue: number, retryAfterSeconds: number) => ({
  ok: false,
  limit,
  limitValue,
  remaining: 0,
  retryAfterSeconds,
});

describe("QuotaStore tenants and keys", () => {
  it("resolves API keys by hash, replaces stale hashes and forgets removed tenants", async () => {
    const { store, prefix } = await storeWith({});
    expect(await store.tenantForApiKey("key-1")).toBe("acme");
    expect(await store.tenantForApiKey("nope")).toBeUndefined();
    // Only hashes are stored.
    expect(await redis.hgetall(names(prefix).apiKeyIndex)).toEqual({ [hashApiKey("key-1")]: "acme" });

    await store.writeTenant("other", {}, [hashApiKey("key-3")]);
    await store.writeTenant("acme", { tokensPerMinute: 5 }, [hashApiKey("key-2")]);
    await store.writeTenant("acme", { tokensPerMinute: 5 }, [hashApiKey("key-2")]); // idempotent
    expect(await store.tenantForApiKey("key-1")).toBeUndefined();
    expect(await store.tenantForApiKey("key-2")).toBe("acme");
    expect(await store.tenantForApiKey("key-3")).toBe("other");
    expect((await store.usage("acme", NOW)).limits).toEqual({ tokensPerMinute: 5 });

    await store.removeTenant("acme");
    expect(await store.tenantForApiKey("key-2")).toBeUndefined();
    expect(await store.tenantForApiKey("key-3")).toBe("other");
    expect(await store.reserve("acme", randomUUID(), 1, NOW)).toEqual({
      ok: false,
      reason: "unknown-tenant",
    });
  });

  it("refuses an unknown tenant and accepts a tenant without limits", async () => {
    const { store } = await storeWith({});
    expect(await store.reserve("ghost", "r1", 10, NOW)).toEqual({ ok: false, reason: "unknown-tenant" });
    expect(await store.reserve("acme", "r1", 1_000_000, NOW)).toEqual({ ok: true });
  });
});

describe("QuotaStore limits", () => {
  it("refuses tokensPerMinute with the remaining tokens and the seconds to the minute's end", async () => {
    const { store } = await storeWith({ tokensPerMinute: 100 });
    expect(await store.reserve("acme", "a", 60, NOW)).toEqual({ ok: true });
    expect(await store.reserve("acme", "b", 50, NOW)).toEqual({
      ok: false,
      reason: "limit",
      limit: "tokensPerMinute",
      limitValue: 100,
      remaining: 40,
      retryAfterSeconds: 30,
    });
    // The refusal charged nothing, and the next minute is a fresh window.
    expect((await store.usage("acme", NOW)).tokensThisMinute).toBe(60);
    expect(await store.reserve("acme", "c", 40, NOW)).toEqual({ ok: true });
    expect(await store.reserve("acme", "d", 50, NOW + 60_000)).toEqual({ ok: true });
  });

  it("refuses tokensPerDay until the end of the UTC day", async () => {
    const { store } = await storeWith({ tokensPerDay: 10, tokensPerMinute: 1000 });
    expect(await store.reserve("acme", "a", 10, NOW)).toEqual({ ok: true });
    const refused = await store.reserve("acme", "b", 1, NOW + 120_000);
    expect(refused).toMatchObject({ ok: false, limit: "tokensPerDay", limitValue: 10, remaining: 0 });
    // 12:02:30 -> midnight is 11 h 57 min 30 s away.
    expect(refused).toMatchObject({ retryAfterSeconds: 11 * 3600 + 57 * 60 + 30 });
  });

  it("refuses requestsPerMinute and concurrentRequests by name", async () => {
    const { store } = await storeWith({ requestsPerMinute: 2, concurrentRequests: 5 });
    expect((await store.reserve("acme", "a", 1, NOW)).ok).toBe(true);
    expect((await store.reserve("acme", "b", 1, NOW)).ok).toBe(true);
    expect(await store.reserve("acme", "c", 1, NOW)).toMatchObject(refusal("requestsPerMinute", 2, 30));

    const { store: conc } = await storeWith({ concurrentRequests: 2 });
    expect((await conc.reserve("acme", "a", 1, NOW)).ok).toBe(true);
    expect((await conc.reserve("acme", "b", 1, NOW)).ok).toBe(true);
    expect(await conc.reserve("acme", "c", 1, NOW)).toMatchObject(refusal("concurrentRequests", 2, 1));
    expect(await conc.settle("acme", "a", 1)).toBe("settled");
    expect((await conc.reserve("acme", "c", 1, NOW)).ok).toBe(true);
  });

  it("forgets in-flight slots older than the maximum age (a process died before settling)", async () => {
    const prefix = uniqueName("quota");
    prefixes.push(prefix);
    const store = new QuotaStore(redis, prefix, { inFlightMaxAgeMs: 10_000 });
    await store.writeTenant("acme", { concurrentRequests: 1 }, []);
    expect((await store.reserve("acme", "lost", 1, NOW)).ok).toBe(true);
    expect((await store.reserve("acme", "b", 1, NOW + 5_000)).ok).toBe(false);
    expect((await store.reserve("acme", "b", 1, NOW + 11_000)).ok).toBe(true);
  });
});

describe("QuotaStore settle and release", () => {
  it("does not double-charge a repeated reserve, and settles once", async () => {
    const { store } = await storeWith({ tokensPerMinute: 1000 });
    expect(await store.reserve("acme", "r", 100, NOW)).toEqual({ ok: true });
    expect(await store.reserve("acme", "r", 100, NOW)).toEqual({ ok: true });
    expect(await store.usage("acme", NOW)).toMatchObject(usageOf(100, 1, 1));
    expect(await store.settle("acme", "r", 30)).toBe("settled");
    expect(await store.settle("acme", "r", 30)).toBe("already");
    expect(await store.release("acme", "r")).toBe("already");
    expect(await store.usage("acme", NOW)).toMatchObject(usageOf(30, 1, 0));
    expect(await store.settle("acme", "never-reserved", 5)).toBe("unknown");
    expect(await store.release("acme", "never-reserved")).toBe("unknown");
  });

  it("caps a settle at the reservation and refunds into the windows that were charged", async () => {
    const { store } = await storeWith({});
    await store.reserve("acme", "r", 50, NOW);
    await store.reserve("acme", "s", 50, NOW + 60_000); // the next minute
    expect(await store.settle("acme", "r", 80)).toBe("settled"); // more than reserved: charged 50
    expect(await store.settle("acme", "s", 10)).toBe("settled");
    expect((await store.usage("acme", NOW)).tokensThisMinute).toBe(50);
    expect((await store.usage("acme", NOW + 60_000)).tokensThisMinute).toBe(10);
    expect((await store.usage("acme", NOW)).tokensToday).toBe(60);
  });

  it("release refunds everything, including the request count", async () => {
    const { store, prefix } = await storeWith({ requestsPerMinute: 1 });
    await store.reserve("acme", "r", 70, NOW);
    expect(await store.release("acme", "r")).toBe("released");
    expect(await store.release("acme", "r")).toBe("already");
    expect(await store.usage("acme", NOW)).toMatchObject(usageOf(0, 0, 0));
    expect((await store.reserve("acme", "again", 1, NOW)).ok).toBe(true);
    // Window keys and the reservation expire on their own.
    const keys = tenantKeys(prefix, "acme");
    const w = windowsAt(NOW);
    expect(await redis.ttl(keys.tokensMinute(w.minute))).toBeGreaterThan(60);
    expect(await redis.ttl(keys.tokensMinute(w.minute))).toBeLessThanOrEqual(120);
    expect(await redis.ttl(keys.tokensDay(w.day))).toBeGreaterThan(86_400);
    expect(await redis.ttl(keys.reservation("r"))).toBeGreaterThan(86_400);
  });

  it("a settle after a release charges the request once: it ran although its gateway gave up", async () => {
    // The gateway releases when RabbitMQ closes before confirming a publish; the task may still run.
    const { store } = await storeWith({ tokensPerDay: 1000 });
    await store.reserve("acme", "r", 70, NOW);
    expect(await store.release("acme", "r")).toBe("released");
    expect(await store.usage("acme", NOW)).toMatchObject({ tokensToday: 0, requestsThisMinute: 0 });
    expect(await store.settle("acme", "r", 90)).toBe("settled"); // capped at the 70 reserved
    expect(await store.settle("acme", "r", 90)).toBe("already");
    expect(await store.release("acme", "r")).toBe("already");
    expect(await store.usage("acme", NOW)).toMatchObject(usageOf(70, 1, 0));
  });
});

describe("QuotaStore under concurrency", () => {
  it("64 concurrent reserves over 4 connections never exceed 1,000 tokens, and settle exactly", async () => {
    const clients = Array.from({ length: 4 }, () => new Redis(urls.redisUrl));
    try {
      const { prefix } = await storeWith({ tokensPerMinute: 1000, tokensPerDay: 1000 });
      // One store per connection, as several gateway processes would have.
      const stores = clients.map((c) => new QuotaStore(c, prefix));
      const now = Date.now();
      const ids = Array.from({ length: 64 }, (_, i) => `req-${i}`);
      // 64 x 45 = 2,880 tokens asked for: at most 22 fit in 1,000.
      const results = await Promise.all(ids.map((id, i) => stores[i % 4]!.reserve("acme", id, 45, now)));
      const accepted = ids.filter((_, i) => results[i]!.ok);
      expect(accepted).toHaveLength(22);
      for (const r of results) {
        if (!r.ok) expect(r).toMatchObject({ reason: "limit", limitValue: 1000, remaining: 10 });
      }
      const usage = await stores[0]!.usage("acme", now);
      expect(usage).toMatchObject({ tokensToday: 990, tokensThisMinute: 990, inFlight: 22 });

      // Settle each accepted one (some twice, from different connections) with 20 actual tokens.
      const settled = await Promise.all(
        [...accepted, ...accepted.slice(0, 8)].map((id, i) => stores[(i + 1) % 4]!.settle("acme", id, 20)),
      );
      expect(settled.filter((s) => s === "settled")).toHaveLength(22);
      expect(settled.filter((s) => s === "already")).toHaveLength(8);
      expect(await stores[0]!.usage("acme", now)).toMatchObject(usageOf(22 * 20, 22, 0));
    } finally {
      for (const c of clients) c.disconnect();
    }
  });

  it("measures reserve throughput, sequential and 64 concurrent (reported, not asserted)", async () => {
    const { store } = await storeWith({ tokensPerDay: 1e12, tokensPerMinute: 1e12 });
    const n = 2000;
    let t = performance.now();
    for (let i = 0; i < n; i++) await store.reserve("acme", `s-${i}`, 1);
    const sequential = n / ((performance.now() - t) / 1000);
    t = performance.now();
    for (let batch = 0; batch < n / 64; batch++) {
      await Promise.all(Array.from({ length: 64 }, (_, i) => store.reserve("acme", `c-${batch}-${i}`, 1)));
    }
    const concurrent = ((n / 64) * 64) / ((performance.now() - t) / 1000);
    console.log(
      `[quota] reserve: ${Math.round(sequential)}/s sequential, ${Math.round(concurrent)}/s at 64 concurrent (one connection)`,
    );
    expect((await store.usage("acme")).inFlight).toBeGreaterThan(0);
  });
});

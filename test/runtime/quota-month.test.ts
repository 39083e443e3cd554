// The monthly token window (TenantQuota limits.tokensPerMonth) against a real Redis: it refuses
// until the 1st of the next month, settle and release refund it exactly, and a reservation made
// before the window existed (no monthKey in its hash) still settles.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { QuotaStore, windowsAt } from "../../runtime/shared/quota/index.js";
import { serviceUrls, uniqueName } from "../harness/services.js";

let redis: Redis;
const prefixes: string[] = [];

async function storeWith(limits: Parameters<QuotaStore["writeTenant"]>[1]) {
  const prefix = uniqueName("quota-month");
  prefixes.push(prefix);
  const store = new QuotaStore(redis, prefix);
  await store.writeTenant("acme", limits, []);
  return { store, prefix };
}

beforeAll(() => {
  redis = new Redis(serviceUrls().redisUrl);
});

afterAll(async () => {
  for (const prefix of prefixes) {
    const found = await redis.keys(`tp:{${prefix}/*`);
    if (found.length) await redis.del(...found);
  }
  redis.disconnect();
});

// 30 January 2025, 12:00:00 UTC: the month ends in 1 day 12 hours.
const NOW = Date.UTC(2025, 0, 30, 12, 0, 0);

describe("tokensPerMonth", () => {
  it("names the month window and when it ends", () => {
    const w = windowsAt(NOW);
    expect(w.month).toBe("2025-01");
    expect(w.secondsToMonthEnd).toBe(36 * 3600);
    expect(new Date(w.endsAt.month).toISOString()).toBe("2025-02-01T00:00:00.000Z");
    expect(windowsAt(Date.UTC(2024, 11, 31, 23, 59, 59)).endsAt.month).toBe(Date.UTC(2025, 0, 1));
  });

  it("refuses past the monthly limit across days, until the 1st of the next month", async () => {
    const { store } = await storeWith({ tokensPerMonth: 100, tokensPerDay: 80 });
    expect(await store.reserve("acme", "a", 60, NOW - 5 * 86_400_000)).toEqual({ ok: true });
    expect(await store.reserve("acme", "b", 40, NOW)).toEqual({ ok: true });
    const refused = await store.reserve("acme", "c", 1, NOW);
    expect(refused).toMatchObject({
      ok: false,
      limit: "tokensPerMonth",
      limitValue: 100,
      remaining: 0,
      retryAfterSeconds: 36 * 3600,
    });
    expect((await store.usage("acme", NOW)).tokensThisMonth).toBe(100);
    // February is a fresh window.
    expect(await store.reserve("acme", "d", 50, Date.UTC(2025, 1, 1, 0, 0, 1))).toEqual({ ok: true });
  });

  it("settle charges the actual tokens and release refunds everything in the month window", async () => {
    const { store } = await storeWith({ tokensPerMonth: 1_000 });
    const now = Date.now();
    expect(await store.reserve("acme", "s", 100, now)).toEqual({ ok: true });
    expect(await store.reserve("acme", "r", 200, now)).toEqual({ ok: true });
    expect((await store.usage("acme", now)).tokensThisMonth).toBe(300);
    expect(await store.settle("acme", "s", 30)).toBe("settled");
    expect(await store.release("acme", "r")).toBe("released");
    expect(await store.settle("acme", "s", 30)).toBe("already");
    expect((await store.usage("acme", now)).tokensThisMonth).toBe(30);
  });

  it("settles a reservation made before the month window existed", async () => {
    const { store, prefix } = await storeWith({ tokensPerMonth: 1_000 });
    const now = Date.now();
    expect(await store.reserve("acme", "old", 100, now)).toEqual({ ok: true });
    // What an older gateway wrote: the same hash without monthKey.
    await redis.hdel(tenantKeys(prefix, "acme").reservation("old"), "monthKey");
    expect(await store.settle("acme", "old", 40)).toBe("settled");
    const usage = await store.usage("acme", now);
    expect(usage.tokensToday).toBe(40);
    expect(usage.inFlight).toBe(0);
  });
});

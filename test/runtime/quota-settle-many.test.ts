// QuotaStore.settleMany against a real Redis: a batch of settlements (one script call per chunk)
// ends in exactly the state, outcomes and usage that settling each request alone gives, including
// capped charges, a settle after a release, duplicates, unknown requests and batches larger than a chunk.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { QuotaStore, hashApiKey } from "../../runtime/shared/quota/index.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import { deleteQuotaKeys } from "./helpers/quota-keys.js";

const urls = serviceUrls();
let redis: Redis;
const prefixes: string[] = [];

// Mid-minute (12:00:30 UTC); some reservations fall in the next minute.
const NOW = Date.UTC(2025, 0, 15, 12, 0, 30);

beforeAll(() => {
  redis = new Redis(urls.redisUrl);
});

afterAll(async () => {
  await deleteQuotaKeys(redis, prefixes);
  redis.disconnect();
});

/** A fresh prefix with tenant "acme" holding the same reservations: 300 plain, one released. */
async function prepared() {
  const prefix = uniqueName("settle-many");
  prefixes.push(prefix);
  const store = new QuotaStore(redis, prefix);
  await store.writeTenant("acme", { tokensPerDay: 1_000_000 }, [hashApiKey(`key-${prefix}`)]);
  for (let i = 0; i < 300; i++) {
    expect((await store.reserve("acme", `r${i}`, 50, NOW + (i % 2) * 60_000)).ok).toBe(true);
  }
  expect((await store.reserve("acme", "released", 70, NOW)).ok).toBe(true);
  expect(await store.release("acme", "released")).toBe("released");
  return { store, prefix };
}

/** Every reservation's hash (its key names without the prefix) and the tenant's usage in both minutes. */
async function snapshot(store: QuotaStore, prefix: string) {
  const keys = tenantKeys(prefix, "acme");
  const ids = [...Array.from({ length: 300 }, (_, i) => `r${i}`), "released"];
  const hashes = await Promise.all(ids.map((id) => redis.hgetall(keys.reservation(id))));
  const reservations = hashes.map((h) =>
    Object.fromEntries(Object.entries(h).map(([field, value]) => [field, value.replaceAll(prefix, "")])),
  );
  return { reservations, now: await store.usage("acme", NOW), next: await store.usage("acme", NOW + 60_000) };
}

describe("QuotaStore.settleMany", () => {
  it("settles a batch exactly as one settle per request would", async () => {
    // Charges below, at and above the reservation; a duplicate; a settle after a release; an unknown id.
    const settlements = [
      ...Array.from({ length: 300 }, (_, i) => ({ requestId: `r${i}`, actualTokens: (i * 7) % 90 })),
      { requestId: "r5", actualTokens: 1 },
      { requestId: "released", actualTokens: 90 },
      { requestId: "never-reserved", actualTokens: 5 },
    ];

    const one = await prepared();
    const alone: string[] = [];
    for (const s of settlements) alone.push(await one.store.settle("acme", s.requestId, s.actualTokens));

    const many = await prepared();
    const batched = await many.store.settleMany("acme", settlements);

    expect(batched).toEqual(alone);
    expect(batched.slice(0, 300).every((o) => o === "settled")).toBe(true);
    expect(batched.slice(300)).toEqual(["already", "settled", "unknown"]);
    const [a, b] = [await snapshot(one.store, one.prefix), await snapshot(many.store, many.prefix)];
    // Same state, charge and actual amount in every reservation, same usage in both minutes.
    expect(b).toEqual(a);
    expect(b.now.inFlight).toBe(0);

    // Settling the batch again charges nothing more.
    expect(new Set(await many.store.settleMany("acme", settlements.slice(0, 302)))).toEqual(
      new Set(["already"]),
    );
    expect(await snapshot(many.store, many.prefix)).toEqual(b);
  });

  it("refuses a negative amount before touching Redis", async () => {
    const { store } = await prepared();
    await expect(store.settleMany("acme", [{ requestId: "r1", actualTokens: -1 }])).rejects.toThrow(
      /non-negative/,
    );
    expect((await store.usage("acme", NOW)).inFlight).toBe(301 - 1);
  });
});

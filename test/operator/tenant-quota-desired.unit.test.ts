/** Unit tests of the TenantQuota's pure parts: limits, key resolution, conditions, usage. */
import { describe, expect, it } from "vitest";
import type { TenantQuota } from "../../operator/api/index.js";
import {
  desiredTenant,
  quotaConditions,
  resolveApiKeys,
  tenantOwner,
  usageStatus,
} from "../../operator/tenant-quota/desired.js";
import { isPublished, limitsHashFor } from "../../operator/tenant-quota/redis-state.js";
import { hashApiKey } from "../../runtime/shared/quota/index.js";
import { samplesByKind, stored } from "./helpers/samples.js";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

function sample(name: string): TenantQuota {
  return samplesByKind().tenants.find((t) => t.metadata?.name === name)!;
}

describe("desiredTenant", () => {
  it("takes the limits that are set and every key reference, default key apiKey", () => {
    const quota = stored(sample("hobbyist"));
    quota.spec!.apiKeys!.push({ name: "spare", secretRef: { name: "spare-key" } } as never);
    expect(desiredTenant(quota.spec!)).toEqual({
      tenant: "hobbyist",
      limits: { tokensPerDay: 10000, tokensPerMinute: 1000, requestsPerMinute: 60, concurrentRequests: 2 },
      apiKeys: [
        { name: "default", secret: "hobbyist-api-key", key: "apiKey" },
        { name: "spare", secret: "spare-key", key: "apiKey" },
      ],
      secrets: ["hobbyist-api-key", "spare-key"],
    });
    const partial = desiredTenant({ tenant: "t", limits: { tokensPerMinute: 5 } } as never);
    expect(partial.limits).toEqual({ tokensPerMinute: 5 });
    expect(partial.apiKeys).toEqual([]);
  });
});

describe("resolveApiKeys", () => {
  const refs = desiredTenant(sample("acme").spec!).apiKeys;
  const secrets = new Map<string, { data: Record<string, string> }>([
    ["acme-api-keys", { data: { primary: b64("tp_live_primary"), next: b64("tp_live_next\n") } }],
  ]);

  it("hashes each key (whitespace around it dropped), sorted and unique", () => {
    const resolved = resolveApiKeys(refs, secrets);
    expect(resolved.problems).toEqual([]);
    expect(resolved.hashes).toEqual([hashApiKey("tp_live_primary"), hashApiKey("tp_live_next")].sort());
    const twice = resolveApiKeys(
      [...refs, { name: "again", secret: "acme-api-keys", key: "primary" }],
      secrets,
    );
    expect(twice.hashes).toHaveLength(2);
  });

  it("names the Secret and key of every problem, never the value", () => {
    const resolved = resolveApiKeys(
      [
        ...refs,
        { name: "gone", secret: "missing-secret", key: "apiKey" },
        { name: "typo", secret: "acme-api-keys", key: "primray" },
        { name: "blank", secret: "blank", key: "apiKey" },
      ],
      new Map([...secrets, ["blank", { data: { apiKey: b64("  \n") } }]]),
    );
    expect(resolved.hashes).toHaveLength(2);
    expect(resolved.problems).toEqual([
      { reason: "SecretNotFound", message: "Secret missing-secret not found (API key gone)" },
      { reason: "SecretKeyNotFound", message: "Secret acme-api-keys has no key primray (API key typo)" },
      { reason: "EmptyAPIKey", message: "Secret blank key apiKey is empty (API key blank)" },
    ]);
    const conditions = quotaConditions(3, "acme", 2, resolved.problems, false);
    expect(JSON.stringify(conditions)).not.toContain("tp_live");
    expect(conditions.find((c) => c.type === "Degraded")).toEqual({
      type: "Degraded",
      status: "True",
      reason: "SecretNotFound",
      message:
        "Secret missing-secret not found (API key gone); Secret acme-api-keys has no key primray (API key typo); " +
        "Secret blank key apiKey is empty (API key blank). 2 other API keys are published.",
      observedGeneration: 3,
    });
    expect(conditions.find((c) => c.type === "Ready")?.status).toBe("False");
  });

  it("does not take over a key another live tenant has published", () => {
    const taken = new Map([[hashApiKey("tp_live_primary"), "other"]]);
    const resolved = resolveApiKeys(refs, secrets, taken);
    expect(resolved.hashes).toEqual([hashApiKey("tp_live_next")]);
    expect(resolved.problems).toEqual([
      {
        reason: "APIKeyInUse",
        message:
          "the key in Secret acme-api-keys key primary is already published for tenant other (API key primary)",
      },
    ]);
  });
});

describe("quotaConditions", () => {
  it("is Ready with the published count, or Ready/Suspended", () => {
    expect(quotaConditions(2, "acme", 2, [], false)).toEqual([
      {
        type: "Ready",
        status: "True",
        reason: "Reconciled",
        message: "2 API keys and the limits of tenant acme are published",
        observedGeneration: 2,
      },
      { type: "Progressing", status: "False", reason: "Reconciled", message: "", observedGeneration: 2 },
      { type: "Degraded", status: "False", reason: "Reconciled", message: "", observedGeneration: 2 },
    ]);
    expect(quotaConditions(1, "acme", 1, [], true)[0]).toMatchObject({
      status: "True",
      reason: "Suspended",
      message: "tenant acme is suspended: every request is refused (1 API key kept)",
    });
  });
});

describe("usageStatus", () => {
  const limits = { tokensPerDay: 10_000 };
  const counters = {
    tokensThisMonth: 9_000,
    tokensToday: 2_599,
    tokensThisMinute: 12,
    requestsThisMinute: 3,
    inFlight: 1,
  };
  const t0 = new Date("2026-01-01T10:00:00.123Z");

  it("reports the counters and the share of the daily limit, rounded down", () => {
    expect(usageStatus(counters, limits, undefined, t0)).toEqual({
      usage: { ...counters, updatedAt: "2026-01-01T10:00:00Z" },
      usedPercent: 25,
    });
    expect(usageStatus(counters, { tokensPerMinute: 5 }, undefined, t0).usedPercent).toBeUndefined();
  });

  it("keeps updatedAt while nothing changed, so an idle resync writes nothing", () => {
    const first = usageStatus(counters, limits, undefined, t0);
    const later = new Date("2026-01-01T10:05:00Z");
    expect(usageStatus(counters, limits, first.usage as never, later)).toEqual(first);
    const moved = usageStatus({ ...counters, inFlight: 0 }, limits, first.usage as never, later);
    expect(moved.usage.updatedAt).toBe("2026-01-01T10:05:00Z");
  });
});

describe("tenantOwner and the Redis comparison", () => {
  it("gives a tenant to its oldest live TenantQuota", () => {
    const a = stored(sample("acme"), { name: "a", creationTimestamp: "2026-01-02T00:00:00Z" });
    const b = stored(sample("acme"), { name: "b", creationTimestamp: "2026-01-01T00:00:00Z" });
    const c = stored(sample("acme"), { name: "c", creationTimestamp: "2026-01-01T00:00:00Z" });
    expect(tenantOwner([a, c, b], "acme")?.metadata?.name).toBe("b");
    const deleting = stored(b, { deletionTimestamp: "2026-01-03T00:00:00Z" });
    expect(tenantOwner([a, c, deleting], "acme")?.metadata?.name).toBe("c");
    expect(tenantOwner([a], "nobody")).toBeUndefined();
  });

  it("compares limits and hashes exactly as QuotaStore.writeTenant stores them", () => {
    const limits = { tokensPerDay: 100, concurrentRequests: 2 };
    const published = {
      limitsHash: { tenant: "acme", tokensPerDay: "100", concurrentRequests: "2" },
      hashes: ["a", "b"],
      others: new Map(),
    };
    expect(limitsHashFor("acme", limits)).toEqual(published.limitsHash);
    expect(isPublished(published, "acme", limits, ["a", "b"])).toBe(true);
    expect(isPublished(published, "acme", limits, ["a"])).toBe(false);
    expect(isPublished(published, "acme", { ...limits, tokensPerDay: 101 }, ["a", "b"])).toBe(false);
    expect(isPublished(published, "acme", { tokensPerDay: 100 }, ["a", "b"])).toBe(false);
    expect(isPublished({ ...published, limitsHash: {} }, "acme", {}, ["a", "b"])).toBe(false);
  });
});

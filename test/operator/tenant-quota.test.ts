/**
 * TenantQuota reconciler against the real apiserver and Redis: the samples become limits and
 * API-key hashes, usage flows back into status, a no-op resync writes nothing anywhere, Secret
 * changes and broken references are handled, deletion removes the tenant.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FINALIZER } from "../../operator/shared/labels.js";
import { names, tenantKeys, RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { hashApiKey, QuotaStore } from "../../runtime/shared/quota/index.js";
import { auditMark, kubectlOk, repoRoot } from "../harness/kube.js";
import { controllerEnv, type ControllerEnv } from "./helpers/controller-env.js";
import { conditionOf, getJson } from "./helpers/operator-process.js";

const FREE_KEY = "tp_free_3b7e1c9a5d2f4e6a8b0c1d2e3f4a5b6c";
const PRIMARY = "tp_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0";
const NEXT = "tp_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9";
const ROTATED = "tp_live_rotated_aaaaaaaaaaaaaaaaaaaaaaaa";
const REDIS_WRITES =
  /^(hset|hdel|del|set|mset|evalsha|eval|multi|exec|expire|zadd|zrem|incrby|hmset|unlink)$/i;

let t: ControllerEnv;

beforeAll(async () => {
  t = await controllerEnv("tq");
  await t.kubectl("apply", "-f", join(repoRoot, "samples/tenant-quota-free.yaml"));
  await t.kubectl("apply", "-f", join(repoRoot, "samples/tenant-quota-large.yaml"));
  await t.reconcile("TenantQuota", "hobbyist", "acme");
});

afterAll(async () => {
  await t?.cleanup();
});

const quota = (name: string) => getJson(t.namespace, "tenantquota", name);

async function indexOf(tenant: string): Promise<string[]> {
  const index = await t.redis.hgetall(names(t.namespace).apiKeyIndex);
  return Object.entries(index)
    .filter(([, owner]) => owner === tenant)
    .map(([hash]) => hash)
    .sort();
}

/** Commands sent to Redis for this namespace's keys while `run` runs (a real MONITOR). */
async function redisCommandsDuring(run: () => Promise<void>): Promise<string[][]> {
  const monitor = await t.redis.duplicate().monitor();
  const seen: string[][] = [];
  monitor.on("monitor", (_time: string, args: string[]) => {
    if (args.some((a) => a.includes(t.namespace))) seen.push(args);
  });
  await new Promise((r) => setTimeout(r, 100));
  await run();
  await new Promise((r) => setTimeout(r, 200));
  monitor.disconnect();
  return seen;
}

describe("TenantQuota", () => {
  it("publishes limits and API-key hashes, never the keys themselves", async () => {
    expect(await t.redis.hgetall(tenantKeys(t.namespace, "acme").limits)).toEqual({
      tenant: "acme",
      tokensPerMonth: "1000000000",
      tokensPerDay: "50000000",
      tokensPerMinute: "500000",
      requestsPerMinute: "30000",
      concurrentRequests: "2000",
    });
    expect(await t.redis.hgetall(tenantKeys(t.namespace, "hobbyist").limits)).toEqual({
      tenant: "hobbyist",
      tokensPerDay: "10000",
      tokensPerMinute: "1000",
      requestsPerMinute: "60",
      concurrentRequests: "2",
    });
    expect(await indexOf("acme")).toEqual([hashApiKey(PRIMARY), hashApiKey(NEXT)].sort());
    expect(await indexOf("hobbyist")).toEqual([hashApiKey(FREE_KEY)]);
    // The gateway's lookup resolves the real key.
    const store = new QuotaStore(t.redis, t.namespace);
    expect(await store.tenantForApiKey(PRIMARY)).toBe("acme");
    // No plaintext anywhere in Redis under this prefix.
    for (const key of await t.redis.keys(`tp:*${t.namespace}*`)) {
      const type = await t.redis.type(key);
      const dump =
        type === "hash" ? JSON.stringify(await t.redis.hgetall(key)) : String(await t.redis.get(key));
      for (const secret of [FREE_KEY, PRIMARY, NEXT]) expect(dump).not.toContain(secret);
    }
  });

  it("reports Ready, the published key count and usage, with its finalizer", async () => {
    const acme = await quota("acme");
    expect(acme.metadata.finalizers).toEqual([FINALIZER]);
    expect(acme.status).toMatchObject({
      observedGeneration: 1,
      apiKeys: 2,
      usedPercent: 0,
      usage: { tokensThisMonth: 0, tokensToday: 0, tokensThisMinute: 0, requestsThisMinute: 0, inFlight: 0 },
    });
    expect(conditionOf(acme)).toMatchObject({
      status: "True",
      message: "2 API keys and the limits of tenant acme are published",
    });
    expect(conditionOf(acme, "Degraded")).toMatchObject({ status: "False" });
    expect(JSON.stringify(acme)).not.toContain(PRIMARY);
  });

  it("lists the tenants in the namespace's runtime config", async () => {
    const configMap = await getJson(t.namespace, "configmap", "turnpike-runtime");
    const config = JSON.parse(configMap.data[RUNTIME_CONFIG_KEY]);
    expect(config.prefix).toBe(t.namespace);
    expect(config.tenants).toEqual([
      { name: "acme", models: [], priority: 9, suspended: false, weight: 2 },
      {
        name: "hobbyist",
        models: ["ocr", "ocr-rec"],
        priority: 1,
        suspended: false,
        weight: 1,
        maxQueuedPerModel: 20,
      },
    ]);
  });

  it("makes no write to the apiserver or Redis on a no-op resync", async () => {
    const mark = auditMark();
    const commands = await redisCommandsDuring(() => t.reconcile("TenantQuota", "hobbyist", "acme"));
    expect(t.writesInNamespace(mark)).toEqual([]);
    expect(commands.length).toBeGreaterThan(0); // it did read
    expect(commands.filter(([verb]) => REDIS_WRITES.test(verb!))).toEqual([]);
  });

  it("writes usage back to status and refreshes it on the next reconcile", async () => {
    const store = new QuotaStore(t.redis, t.namespace);
    expect(await store.reserve("hobbyist", "req-1", 600)).toEqual({ ok: true });
    await t.reconcile("TenantQuota", "hobbyist");
    const hobbyist = await quota("hobbyist");
    expect(hobbyist.status.usage).toMatchObject({
      tokensThisMonth: 600,
      tokensToday: 600,
      tokensThisMinute: 600,
      requestsThisMinute: 1,
      inFlight: 1,
    });
    expect(hobbyist.status.usedPercent).toBe(6);
    await store.settle("hobbyist", "req-1", 250);
    await t.reconcile("TenantQuota", "hobbyist");
    expect((await quota("hobbyist")).status).toMatchObject({
      usage: { tokensThisMonth: 250, tokensToday: 250, inFlight: 0 },
      usedPercent: 2,
    });
  });

  it("rewrites Redis when the spec changes", async () => {
    await t.kubectl(
      "patch",
      "tenantquota",
      "acme",
      "--type=merge",
      "-p",
      '{"spec":{"limits":{"tokensPerDay":60000000}}}',
    );
    await t.reconcile("TenantQuota", "acme");
    expect(await t.redis.hget(tenantKeys(t.namespace, "acme").limits, "tokensPerDay")).toBe("60000000");
    const acme = await quota("acme");
    expect(acme.status.observedGeneration).toBe(2);
    expect(conditionOf(acme)).toMatchObject({ status: "True", observedGeneration: 2 });
  });

  it("publishes a rotated key and forgets the old one", async () => {
    const data = { data: { next: Buffer.from(ROTATED).toString("base64") } };
    await t.kubectl("patch", "secret", "acme-api-keys", "--type=merge", "-p", JSON.stringify(data));
    await t.reconcile("TenantQuota", "acme");
    expect(await indexOf("acme")).toEqual([hashApiKey(PRIMARY), hashApiKey(ROTATED)].sort());
  });

  it("is Degraded naming the Secret and key when a key is missing, and revokes it", async () => {
    const patch = [{ op: "replace", path: "/spec/apiKeys/0/secretRef/key", value: "wrong" }];
    await t.kubectl("patch", "tenantquota", "hobbyist", "--type=json", "-p", JSON.stringify(patch));
    await t.reconcile("TenantQuota", "hobbyist");
    const hobbyist = await quota("hobbyist");
    expect(conditionOf(hobbyist, "Degraded")).toMatchObject({
      status: "True",
      reason: "SecretKeyNotFound",
      message: "Secret hobbyist-api-key has no key wrong (API key default). 0 other API keys are published.",
    });
    expect(conditionOf(hobbyist)).toMatchObject({ status: "False", reason: "SecretKeyNotFound" });
    expect(hobbyist.status.apiKeys).toBe(0);
    expect(await indexOf("hobbyist")).toEqual([]);
    // The limits stay: the tenant exists, it just has no working key.
    expect(await t.redis.hget(tenantKeys(t.namespace, "hobbyist").limits, "tokensPerDay")).toBe("10000");

    const events = JSON.parse(
      await t.kubectl("get", "events", "--field-selector", "involvedObject.name=hobbyist", "-o", "json"),
    ).items;
    expect(events).toEqual([
      expect.objectContaining({
        type: "Warning",
        reason: "SecretKeyNotFound",
        message:
          "Secret hobbyist-api-key has no key wrong (API key default). 0 other API keys are published.",
      }),
    ]);
    // Reconciling again neither re-emits the Event nor rewrites status.
    const mark = auditMark();
    await t.reconcile("TenantQuota", "hobbyist");
    expect(t.writesInNamespace(mark)).toEqual([]);
  });

  it("is Degraded when the Secret itself is missing, and recovers when it returns", async () => {
    const secret = await getJson(t.namespace, "secret", "acme-api-keys");
    await t.kubectl("delete", "secret", "acme-api-keys");
    await t.reconcile("TenantQuota", "acme");
    const acme = await quota("acme");
    expect(conditionOf(acme, "Degraded")).toMatchObject({
      status: "True",
      reason: "SecretNotFound",
      message:
        "Secret acme-api-keys not found (API key primary); Secret acme-api-keys not found (API key next). " +
        "0 other API keys are published.",
    });
    expect(await indexOf("acme")).toEqual([]);

    await t.kubectl(
      "create",
      "secret",
      "generic",
      "acme-api-keys",
      `--from-literal=primary=${PRIMARY}`,
      `--from-literal=next=${NEXT}`,
    );
    await t.reconcile("TenantQuota", "acme");
    const again = await quota("acme");
    expect(conditionOf(again)).toMatchObject({ status: "True" });
    expect(conditionOf(again, "Degraded")).toMatchObject({ status: "False" });
    expect(await indexOf("acme")).toEqual([hashApiKey(PRIMARY), hashApiKey(NEXT)].sort());
    // Nothing anywhere (status, Events) carries a key.
    const everything = await t.kubectl("get", "tenantquotas,events", "-o", "json");
    for (const key of [FREE_KEY, PRIMARY, NEXT, ROTATED]) expect(everything).not.toContain(key);
    expect(secret.metadata.name).toBe("acme-api-keys");
  });

  it("refuses a second TenantQuota for the same tenant without touching Redis", async () => {
    const manifest = {
      apiVersion: "turnpike.dev/v1alpha1",
      kind: "TenantQuota",
      metadata: { name: "acme-again" },
      spec: { tenant: "acme", limits: { tokensPerDay: 1 } },
    };
    await kubectlOk(["apply", "-n", t.namespace, "-f", "-"], JSON.stringify(manifest));
    await t.reconcile("TenantQuota", "acme-again", "acme");
    const again = await quota("acme-again");
    expect(conditionOf(again, "Degraded")).toMatchObject({
      status: "True",
      reason: "TenantConflict",
      message: `tenant acme is already claimed by TenantQuota acme in namespace ${t.namespace}`,
    });
    expect(await t.redis.hget(tenantKeys(t.namespace, "acme").limits, "tokensPerDay")).toBe("60000000");
    // Deleting the loser leaves the owner's tenant alone.
    await t.kubectl("delete", "tenantquota", "acme-again", "--wait=false");
    await t.reconcile("TenantQuota", "acme-again");
    expect(await quota("acme-again")).toBeUndefined();
    expect(await indexOf("acme")).toHaveLength(2);
  });

  it("removes the tenant from Redis in its finalizer", async () => {
    await t.kubectl("delete", "tenantquota", "acme", "--wait=false");
    await t.reconcile("TenantQuota", "acme");
    expect(await quota("acme")).toBeUndefined();
    expect(await t.redis.exists(tenantKeys(t.namespace, "acme").limits)).toBe(0);
    expect(await indexOf("acme")).toEqual([]);
    const configMap = await getJson(t.namespace, "configmap", "turnpike-runtime");
    expect(
      JSON.parse(configMap.data[RUNTIME_CONFIG_KEY]).tenants.map((x: { name: string }) => x.name),
    ).toEqual(["hobbyist"]);
    // The last one gone: the runtime ConfigMap goes with it.
    await t.kubectl("delete", "tenantquota", "hobbyist", "--wait=false");
    await t.reconcile("TenantQuota", "hobbyist");
    expect(await getJson(t.namespace, "configmap", "turnpike-runtime")).toBeUndefined();
    expect(await t.redis.exists(tenantKeys(t.namespace, "hobbyist").limits)).toBe(0);
    expect(await t.redis.hlen(names(t.namespace).apiKeyIndex)).toBe(0);
  });
});

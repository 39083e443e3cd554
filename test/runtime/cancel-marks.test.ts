// CancelMarks against a real Redis: checks asked in one turn (a batch of deliveries) answer each
// task by its own marker, across tenants and with several marked tasks in one batch, and fail open
// (not cancelled) when Redis cannot be reached.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { logger } from "../../runtime/shared/logger.js";
import { CancelMarks } from "../../runtime/worker/cancel-marks.js";
import { serviceUrls, uniqueName } from "../harness/services.js";

const urls = serviceUrls();
const log = logger("test");
let redis: Redis;
const prefix = uniqueName("cancel-marks");

beforeAll(() => {
  redis = new Redis(urls.redisUrl);
});

afterAll(async () => {
  const found = await redis.keys(`tp:{${prefix}/*`);
  if (found.length) await redis.del(...found);
  redis.disconnect();
});

/** Sets the marker DELETE /v1/requests/{id} leaves. */
const cancel = (tenant: string, requestId: string) =>
  redis.set(tenantKeys(prefix, tenant).cancel(requestId.toLowerCase()), "1", "EX", 60);

describe("CancelMarks", () => {
  it("answers each task of a batch by its own marker, across tenants", async () => {
    const marks = new CancelMarks(urls.redisUrl, prefix, log);
    try {
      // Its connection is up once a marked probe reads as cancelled (offline, it fails open).
      await cancel("probe", "probe");
      while (!(await marks.isCancelled({ tenant: "probe", requestId: "probe" }))) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const tasks = ["acme", "beta", "gamma"].flatMap((tenant) =>
        Array.from({ length: 20 }, (_, i) => ({ tenant, requestId: `${tenant}-REQ-${i}` })),
      );
      await cancel("acme", "acme-REQ-3");
      await cancel("acme", "acme-REQ-17");
      await cancel("gamma", "gamma-REQ-0");
      // The same id under another tenant is not that tenant's cancellation.
      await cancel("gamma", "beta-REQ-5");
      const answers = await Promise.all(tasks.map((t) => marks.isCancelled(t)));
      const cancelled = tasks.filter((_, i) => answers[i]).map((t) => t.requestId);
      expect(cancelled).toEqual(["acme-REQ-3", "acme-REQ-17", "gamma-REQ-0"]);
      // A batch with no marker at all.
      const clean = await Promise.all(tasks.slice(20, 40).map((t) => marks.isCancelled(t)));
      expect(clean.every((c) => c === false)).toBe(true);
    } finally {
      marks.close();
    }
  });

  it("fails open when Redis cannot be reached", async () => {
    const marks = new CancelMarks("redis://127.0.0.1:1", prefix, log);
    try {
      await cancel("acme", "unreachable");
      expect(await marks.isCancelled({ tenant: "acme", requestId: "unreachable" })).toBe(false);
    } finally {
      marks.close();
    }
  });
});

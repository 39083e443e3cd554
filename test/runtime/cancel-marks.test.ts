// The worker's cancel checks against real Redis: checks asked for while the model runs wait for the
// run to return and then read Redis as it is at that moment (a DELETE that landed meanwhile is
// seen), several of them in one pipeline; an idle model's checks go out at once.
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { logger } from "../../runtime/shared/logger.js";
import { CancelMarks } from "../../runtime/worker/cancel-marks.js";
import { serviceUrls, uniqueName } from "../harness/services.js";

const prefix = uniqueName("cancel-marks");
const tenant = "t1";
let redis: Redis;
let marks: CancelMarks;

const cancel = (id: string) => redis.set(tenantKeys(prefix, tenant).cancel(id), "tenant", "EX", 600);

beforeAll(() => {
  redis = new Redis(serviceUrls().redisUrl);
  marks = new CancelMarks(serviceUrls().redisUrl, prefix, logger("test"));
});

afterAll(async () => {
  marks.close();
  await redis.quit();
});

describe("CancelMarks", () => {
  it("answers an idle model's check from Redis as it was when asked", async () => {
    await cancel("idle-cancelled");
    const [cancelled, running] = await Promise.all([
      marks.isCancelled({ requestId: "idle-cancelled", tenant }),
      marks.isCancelled({ requestId: "idle-running", tenant }),
    ]);
    expect([cancelled, running]).toEqual([true, false]);
  });

  it("sends the checks asked for during a run when it returns, seeing cancellations made meanwhile", async () => {
    marks.hold(8);
    const late = marks.isCancelled({ requestId: "held-late", tenant });
    const kept = marks.isCancelled({ requestId: "held-kept", tenant });
    // Several turns of the event loop pass here (a Redis round trip); a check sent at once would
    // have read no marker.
    await cancel("held-late");
    await new Promise((resolve) => setImmediate(resolve));
    marks.release();
    expect(await Promise.all([late, kept])).toEqual([true, false]);
  });

  it("sends held checks at once when as many wait as the next batch can take", async () => {
    await cancel("full-b");
    marks.hold(2);
    const checks = [
      marks.isCancelled({ requestId: "full-a", tenant }),
      marks.isCancelled({ requestId: "full-b", tenant }),
    ];
    // Never released: the two must be answered all the same.
    const answers = await Promise.all(checks);
    marks.release();
    expect(answers).toEqual([false, true]);
  });

  it("uses the upper-case id's marker too (ids are compared in lower case)", async () => {
    await cancel("abc-upper");
    marks.hold(8);
    const check = marks.isCancelled({ requestId: "ABC-UPPER", tenant });
    marks.release();
    expect(await check).toBe(true);
  });
});

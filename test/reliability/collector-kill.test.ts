// Fault: kill -9 the collector while ~1,000 requests are in flight, and start a new one. Results
// pile up in the results queue meanwhile (nothing is lost: it acks only after PostgreSQL committed
// and the quota settled), sync clients keep waiting, and the new collector records everything once.
import { describe, expect, it } from "vitest";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { faultSuite } from "./helpers/fault-suite.js";
import * as scenario from "./helpers/scenario.js";
import { Traffic } from "./helpers/traffic.js";

const suite = faultSuite("collector-kill");
const { rows } = suite;

describe("kill -9 the collector", () => {
  it("records every result once after a new collector starts", async () => {
    const i = await suite.install({
      label: "rel-collector",
      echoBatching: { maxBatchSize: 16, maxDelayMs: 60 },
      tenants: [
        { name: "bulk", limits: { tokensPerDay: 10_000_000 } },
        { name: "capped", limits: { tokensPerDay: 600, concurrentRequests: 100 } },
      ],
    });
    const collector = i.supervise("collector", "collector");
    const gateway = i.supervise("gateway", "gateway");
    const [gatewayUrl] = await Promise.all([gateway.current.ready, collector.current.ready]);
    const traffic = new Traffic(`${i.prefix}-c`, { gateways: () => [gatewayUrl] });
    const sampler = new QuotaSampler(i);
    const tenants = i.tenants;

    // 1,000 accepted requests wait; a throttled worker (prefetch 8 < batch 16: ~130/s) then drains
    // them while sync clients wait and more submissions arrive.
    await traffic.burst({
      tenants: [tenants[0]!, tenants[0]!, tenants[1]!],
      concurrency: 48,
      count: 1_000,
      resendEvery: 10,
    });
    const worker = i.supervise("worker", "echo", { TURNPIKE_PREFETCH: "8" });
    await worker.current.ready;
    const sync = traffic.burst({ tenants: [tenants[0]!], concurrency: 12, count: 12, mode: "sync" });
    // A steady trickle of new submissions (~40/s) through the outage.
    const stream = traffic.stream({
      tenants: [tenants[0]!],
      concurrency: 2,
      max: 600,
      pauseMs: 50,
      resendEvery: 10,
    });
    await scenario.until("a few hundred recorded", async () => (await scenario.recordCount(i)) >= 250);
    const recordedAtFault = await scenario.recordCount(i);
    const inFlightAtFault = traffic.accepted().length - recordedAtFault;
    const faultAt = Date.now();
    await collector.kill9();
    const sse = Promise.all(
      traffic
        .accepted()
        .slice(-12)
        .map((r) => traffic.follow([...r.ids][0]!, tenants.find((t) => t.name === r.tenant)!)),
    );
    // Down for a while: the gateway keeps accepting, results wait in their queue.
    await new Promise((r) => setTimeout(r, 3_000));
    const downUntil = Date.now();
    const atRestart = await scenario.recordCount(i);
    await collector.restart();
    await collector.current.ready;
    await scenario.until(
      "records from the new collector",
      async () => (await scenario.recordCount(i)) > atRestart,
    );
    const backInServiceMs = Date.now() - faultAt;
    await stream.stop();
    await sync;
    const missing = await waitForRecords(i, traffic.acceptedIds(), 90_000);
    await waitForSettled(i, 30_000);
    const recoveryMs = Date.now() - faultAt;
    const followed = await sse;
    sampler.stop();
    const result = await audit(i, traffic, sampler);
    const syncWrong = traffic.requests.filter((r) => r.mode === "sync" && r.result?.seq !== r.seq);
    rows.push(
      scenario.faultRow(
        "kill -9 the collector (new one started)",
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          outage: scenario.outageStats(traffic.answers, faultAt, downUntil),
          reconnect: "collector restarted by the test; gateway and worker unaffected (no dependency on it)",
          notes:
            `submissions during the outage were all accepted (the collector is not on the request path); ` +
            `12 sync and 12 SSE clients got their own result: ${syncWrong.length === 0 && followed.every((f) => f.results === 1)}`,
        },
      ),
    );

    expect(missing).toEqual([]);
    scenario.expectClean(result);
    scenario.expectPromptAnswers(traffic.answers, faultAt, downUntil);
    expect(syncWrong.map((r) => r.key)).toEqual([]);
    expect(followed.filter((f) => f.results !== 1 || f.finalStatus !== "succeeded")).toEqual([]);
  }, 240_000);
});

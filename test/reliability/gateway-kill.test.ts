// Fault: kill -9 a gateway that holds open SSE streams while ~1,000 requests are in flight. Its
// SSE clients reconnect to the other gateway with Last-Event-ID and still get the final event
// (exactly once); submissions that were cut off are retried on the other gateway with the same
// Idempotency-Key and end up as one request each.
import { afterAll, describe, expect, it } from "vitest";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { installation, type Installation } from "./helpers/installation.js";
import { writeRows, type FaultRow } from "./helpers/report-file.js";
import { expectClean, faultRow, outageStats, until } from "./helpers/scenario.js";
import { Traffic } from "./helpers/traffic.js";

const STREAMS = 40;
let inst: Installation | undefined;
const rows: FaultRow[] = [];

afterAll(async () => {
  writeRows("gateway-kill", rows);
  await inst?.cleanup();
}, 60_000);

describe("kill -9 a gateway holding SSE streams", () => {
  it("lets every SSE client get its final event from the other gateway", async () => {
    inst = await installation({
      label: "rel-gateway",
      tenants: [
        { name: "bulk", limits: { tokensPerDay: 10_000_000 } },
        { name: "capped", limits: { tokensPerDay: 700 } },
      ],
    });
    const i = inst;
    const [bulk, capped] = i.tenants as [(typeof i.tenants)[0], (typeof i.tenants)[0]];
    const collector = i.supervise("collector", "collector");
    const doomed = i.supervise("gateway", "gateway-a");
    const survivor = i.supervise("gateway", "gateway-b");
    const [urlA, urlB] = await Promise.all([
      doomed.current.ready,
      survivor.current.ready,
      collector.current.ready,
    ]);
    // Clients know both addresses (as behind a Service); a dead one refuses and they move on.
    const traffic = new Traffic(`${i.prefix}-g`, { gateways: () => [urlA, urlB] });
    const streamsOnA = new Traffic(`${i.prefix}-s`, { gateways: () => [urlA] });
    const sampler = new QuotaSampler(i);

    // No worker yet: 1,000 requests accepted and waiting.
    await traffic.burst({
      tenants: [bulk, bulk, bulk, capped],
      concurrency: 48,
      count: 1_000,
      resendEvery: 10,
    });
    const watched = traffic.accepted().slice(0, STREAMS);
    // Every stream is opened on gateway-a and has seen its `status` event before the kill.
    let opened = 0;
    const follows = watched.map((r) => {
      const tenant = r.tenant === "bulk" ? bulk : capped;
      return streamsOnA.follow([...r.ids][0]!, tenant, 120_000, () => opened++);
    });
    // While the streams are open, more submissions are in flight on both gateways.
    const more = traffic.stream({ tenants: [bulk], concurrency: 16, max: 200, resendEvery: 5 });
    await until("every SSE stream open on gateway-a", () => opened >= watched.length);
    const inFlightAtFault = traffic.accepted().length;
    const faultAt = Date.now();
    await doomed.kill9();
    // Reconnecting clients now only reach gateway-b (the restarted gateway-a has a new address).
    streamsOnA.retarget(() => [urlB]);
    await more.done;
    const worker = i.supervise("worker", "echo");
    await worker.current.ready;
    await doomed.restart();
    await doomed.current.ready;
    const backInServiceMs = Date.now() - faultAt;
    const missing = await waitForRecords(i, traffic.acceptedIds(), 90_000);
    await waitForSettled(i, 30_000);
    const recoveryMs = Date.now() - faultAt;
    const sse = await Promise.all(follows);
    sampler.stop();
    const result = await audit(i, traffic, sampler);
    const reconnects = sse.reduce((n, s) => n + s.reconnects, 0);
    const repeatedStatus = sse.filter((s) => new Set(s.statuses).size !== s.statuses.length).length;
    rows.push(
      faultRow(
        "kill -9 a gateway holding SSE streams",
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          outage: outageStats(traffic.answers, faultAt, faultAt + 5_000),
          reconnect:
            "SSE clients reconnected to the other gateway with Last-Event-ID; the killed gateway restarted by the test",
          notes:
            `${STREAMS} SSE streams open on the killed gateway: ${sse.filter((s) => s.results === 1).length} got exactly one ` +
            `final event after ${reconnects} reconnects in all, ${repeatedStatus} saw a status event twice; ` +
            `submissions cut off by the kill were retried with their key on the other gateway`,
        },
      ),
    );

    expect(missing).toEqual([]);
    expectClean(result);
    expect(sse.filter((s) => s.results !== 1 || s.finalStatus !== "succeeded")).toEqual([]);
    expect(sse.every((s) => s.reconnects >= 1)).toBe(true);
    expect(repeatedStatus).toBe(0);
  }, 240_000);
});

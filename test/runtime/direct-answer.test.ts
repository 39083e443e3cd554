// The direct answer: a synchronous request is answered from the worker's result as it arrives on
// the gateway's own queue, before any record exists; the same publish sits in the durable results
// queue, so the record and the quota settlement follow exactly once, even when the collector that
// takes it dies between its commit and its ack.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { names } from "../../runtime/shared/contracts/index.js";
import { dropAmqpConnection } from "./helpers/broker-admin.js";
import { waitFor } from "./helpers/collector-harness.js";
import { call, KEYS, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { echoWithoutCollector, type EchoWithoutCollector } from "./helpers/echo-without-collector.js";

let stack: EchoWithoutCollector;
let fx: GatewayFixture;

beforeAll(async () => {
  // No collector: nothing can be recorded while the answer is given.
  stack = await echoWithoutCollector({ workerId: "direct", batching: { maxBatchSize: 8, maxDelayMs: 0 } });
  fx = stack.fx;
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const collector = (hooks?: Parameters<EchoWithoutCollector["collector"]>[0]) => stack.collector(hooks);

async function inferNow(values: number[]) {
  const res = await call(fx.url, "/v2/models/echo/infer", {
    key: KEYS.acme,
    body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: values }] },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { parameters: { request_id: string }; outputs: { data: number[] }[] };
  expect(body.outputs[0]!.data).toEqual(values);
  return body.parameters.request_id;
}

async function record(id: string) {
  const { rows } = await fx.pool.query<{ status: string; charged_tokens: number; outputs: unknown }>(
    `SELECT status, charged_tokens::int AS charged_tokens, outputs FROM "${fx.schema}".requests WHERE id = $1`,
    [id],
  );
  return rows;
}

const resultsWaiting = async () => (await fx.channel.checkQueue(names(fx.prefix).resultsQueue)).messageCount;

describe("synchronous answers straight from the worker", () => {
  it("answers before any record exists; the record and the charge follow once a collector runs", async () => {
    const id = await inferNow([1, 2, 3, 4]);
    // Answered, yet nothing is recorded or settled: the result waits durably in the results queue.
    expect(await record(id)).toEqual([]);
    expect(await fx.quota.usage("acme")).toMatchObject({ inFlight: 1 });
    await waitFor("the result in the durable queue", async () => (await resultsWaiting()) === 1);
    expect(await record(id)).toEqual([]);

    const c = await collector();
    await waitFor("the record", async () => (await record(id)).length === 1);
    expect(await record(id)).toMatchObject([{ status: "succeeded", charged_tokens: 1 }]);
    await waitFor("the settlement", async () => (await fx.quota.usage("acme")).inFlight === 0);
    expect(await fx.quota.usage("acme")).toMatchObject({ inFlight: 0, tokensThisMinute: 1 });
    await c.close();
  }, 60_000);

  it("never loses an answered result when the collector dies between its commit and its ack", async () => {
    const before = await fx.quota.usage("acme");
    const id = await inferNow([5, 6, 7, 8]);
    let reached!: () => void;
    const atAck = new Promise<void>((resolve) => (reached = resolve));
    const first = await collector({
      // Recorded, settled and announced, then it stops for good before acknowledging.
      beforeAck: () => {
        reached();
        return new Promise<never>(() => undefined);
      },
    });
    await atAck;
    await first.abort();
    await waitFor("the unacknowledged result back in its queue", async () => (await resultsWaiting()) === 1);
    // The next collector gets the same message again: no second record, no second charge.
    const second = await collector();
    await waitFor("the redelivered result acknowledged", async () => (await resultsWaiting()) === 0);
    expect(await record(id)).toMatchObject([{ status: "succeeded", charged_tokens: 1 }]);
    const after = await fx.quota.usage("acme");
    expect(after.inFlight).toBe(0);
    // The day's counter, not the minute's: the redelivery can cross into the next minute.
    expect(after.tokensToday - before.tokensToday).toBe(1);
    const { rows } = await fx.pool.query<{ requests: number }>(
      `SELECT requests::int AS requests FROM "${fx.schema}".tenant_usage WHERE tenant = 'acme'`,
    );
    expect(rows.reduce((n, r) => n + r.requests, 0)).toBe(2);
    await second.close();
  }, 60_000);

  it("answers from the record when the gateway's own queue is gone, and directly again once it is back", async () => {
    const c = await collector();
    // The broker drops the gateway's reply connection (and with it its exclusive queue).
    await dropAmqpConnection(`turnpike-gateway-replies-${fx.prefix}`);
    const id = await inferNow([9, 10, 11, 12]);
    await waitFor("its record", async () => (await record(id)).length === 1);
    // Reconnected with a new queue: answers come straight from the worker again (no collector).
    await stack.closeCollector(c);
    await waitFor("a direct answer again", async () => {
      const res = await call(fx.url, "/v2/models/echo/infer", {
        key: KEYS.acme,
        body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 1, 1, 1] }] },
        headers: { prefer: "wait=1" },
      });
      return res.status === 200;
    });
    await collector();
  }, 60_000);
});

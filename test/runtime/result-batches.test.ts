// Result batches: the final results of one worker batch for one gateway leave as one message on the
// durable result-batch queue, routed to that gateway too. The gateway answers every request in it
// before any record exists; the collector records and charges each result exactly once, even when it
// dies between its commit and its ack; a poison result in a batch is dead-lettered alone.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  names,
  RESULT_BATCH_MESSAGE_TYPE,
  RESULT_MESSAGE_TYPE,
} from "../../runtime/shared/contracts/index.js";
import { waitFor } from "./helpers/collector-harness.js";
import { call, KEYS, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { echoWithoutCollector, type EchoWithoutCollector } from "./helpers/echo-without-collector.js";

const BATCH = 4;
let stack: EchoWithoutCollector;
let fx: GatewayFixture;

beforeAll(async () => {
  // No collector: every answer comes straight from the worker's result batch. A batch runs only
  // when full: BATCH requests sent together are one batch.
  stack = await echoWithoutCollector({
    workerId: "batches",
    batching: { maxBatchSize: BATCH, maxDelayMs: 10_000 },
  });
  fx = stack.fx;
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const collector = (hooks?: Parameters<EchoWithoutCollector["collector"]>[0]) => stack.collector(hooks);

/** BATCH synchronous requests at once; each answered with its own input. Returns their ids. */
async function inferBatch(first: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: BATCH }, async (_, i) => {
      const values = [first + i, 1, 2, 3];
      const res = await call(fx.url, "/v2/models/echo/infer", {
        key: KEYS.acme,
        body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: values }] },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as {
        parameters: { request_id: string };
        outputs: { data: number[] }[];
      };
      expect(body.outputs[0]!.data).toEqual(values);
      return body.parameters.request_id;
    }),
  );
}

async function records(ids: string[]) {
  const { rows } = await fx.pool.query<{ id: string; status: string; charged_tokens: number }>(
    `SELECT id::text, status, charged_tokens::int AS charged_tokens FROM "${fx.schema}".requests WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  return rows;
}

const waiting = async (queue: string) => (await fx.channel.checkQueue(queue)).messageCount;

async function requestsRecorded(): Promise<number> {
  const { rows } = await fx.pool.query<{ requests: number }>(
    `SELECT coalesce(sum(requests), 0)::int AS requests FROM "${fx.schema}".tenant_usage WHERE tenant = 'acme'`,
  );
  return rows[0]!.requests;
}

describe("results of one worker batch as one message", () => {
  it("answers every request of the batch from one message; recorded and charged once each, across a collector crash", async () => {
    const n = names(fx.prefix);
    const ids = await inferBatch(1);
    // Answered with no collector: the batch's results wait as one durable message. A task that
    // started on the idle model before its cancellation check was answered leaves alone.
    await waitFor("the result batch in its queue", async () => (await waiting(n.resultBatchQueue)) === 1);
    const alone = await waiting(n.resultsQueue);
    expect(alone).toBeLessThanOrEqual(1);
    expect(await records(ids)).toEqual([]);
    expect(await fx.quota.usage("acme")).toMatchObject({ inFlight: BATCH });

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
    await waitFor(
      "the unacknowledged messages back in their queues",
      async () => (await waiting(n.resultBatchQueue)) === 1 && (await waiting(n.resultsQueue)) === alone,
    );

    const second = await collector();
    // Ready counts leave out deliveries not yet acknowledged: wait for what the collector settles last.
    await waitFor("every reservation settled", async () => (await fx.quota.usage("acme")).inFlight === 0);
    await stack.closeCollector(second);
    expect(await waiting(n.resultBatchQueue)).toBe(0);
    expect(await waiting(n.resultsQueue)).toBe(0);
    const rows = await records(ids);
    expect(rows).toHaveLength(BATCH);
    for (const row of rows) expect(row).toMatchObject({ status: "succeeded", charged_tokens: 1 });
    const usage = await fx.quota.usage("acme");
    expect(usage.inFlight).toBe(0);
    expect(usage.tokensThisMinute).toBe(BATCH);
    expect(await requestsRecorded()).toBe(BATCH);
  }, 60_000);

  it("records the good results of a batch and dead-letters a poison one alone", async () => {
    const n = names(fx.prefix);
    // A copy of a recorded result under a new id, and one that can never be recorded.
    const { rows } = await fx.pool.query<{ id: string }>(
      `SELECT id::text FROM "${fx.schema}".requests LIMIT 1`,
    );
    const good = {
      requestId: "5d7d3a52-4f0e-4c53-9a39-0a7d8e2b9c11",
      tenant: "acme",
      target: { kind: "model", name: "echo" },
      status: "succeeded",
      reservedTokens: 0,
      inputTokens: 1,
      outputTokens: 0,
      submittedAt: Date.now(),
      finishedAt: Date.now(),
      steps: [],
    };
    const poison = { requestId: rows[0]!.id, tenant: "acme", status: "no such status" };
    await new Promise<void>((resolve, reject) =>
      fx.channel.sendToQueue(
        n.resultBatchQueue,
        Buffer.from(JSON.stringify([good, poison])),
        { persistent: true, messageId: good.requestId, type: RESULT_BATCH_MESSAGE_TYPE },
        (err: unknown) => (err ? reject(new Error("publish nacked")) : resolve()),
      ),
    );
    const c = await collector();
    await waitFor("the good result recorded", async () => (await records([good.requestId])).length === 1);
    const dead = await waitFor("the poison result in the dead-letter queue", () =>
      fx.channel.get(n.deadLetterQueue, { noAck: true }),
    );
    expect(JSON.parse(dead.content.toString("utf8"))).toEqual(poison);
    expect(dead.properties).toMatchObject({ messageId: poison.requestId, type: RESULT_MESSAGE_TYPE });
    expect(dead.properties.headers).toMatchObject({ "x-turnpike-source-queue": n.resultBatchQueue });
    // A graceful close acknowledges what it recorded; anything unacknowledged would be ready again.
    await stack.closeCollector(c);
    expect(await waiting(n.resultBatchQueue)).toBe(0);
  }, 60_000);
});

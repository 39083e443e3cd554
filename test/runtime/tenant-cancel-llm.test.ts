// DELETE /v1/requests/{id} on the real generative path: gateway -> RabbitMQ -> worker (SmolLM2
// GGUF, one sequence at a time) -> collector -> PostgreSQL. A request waiting in the queue is
// skipped by the worker (charged nothing, reservation refunded); a generation already running stops
// and is charged exactly its prompt and the tokens it generated; Redis and PostgreSQL agree.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { utcDay } from "../../runtime/shared/db/request-sql.js";
import { call, errorOf, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { smolLm2Tokenizer, type SmolLm2Tokenizer } from "./helpers/llm-fixture.js";
import { smolLm2Stack, type SmolLm2Stack } from "./helpers/smollm2-stack.js";
import { eventually } from "./helpers/worker-fixtures.js";

const KEY = "sk-cancel-acme-0123456789";
const OTHER_KEY = "sk-cancel-other-0123456789";
const PROMPT = "Here is a very long list of numbers, one per line, from 1 to 1000:\n1\n2\n3\n";

let stack: SmolLm2Stack;
let fx: GatewayFixture;
let tokenizer: SmolLm2Tokenizer;

beforeAll(async () => {
  stack = await smolLm2Stack({
    model: {
      // One sequence at a time: a second request waits in the queue while the first generates.
      batching: { maxBatchSize: 1, maxDelayMs: 0 },
      tokens: { maxOutputTokens: 400 },
    },
    tenants: [
      { name: "acme", apiKey: KEY, limits: { tokensPerMonth: 1_000_000, tokensPerDay: 100_000 } },
      { name: "other", apiKey: OTHER_KEY },
    ],
  });
  fx = stack.fx;
  tokenizer = await smolLm2Tokenizer(stack.path);
}, 180_000);

afterAll(async () => {
  await stack?.close();
  await tokenizer?.close();
}, 180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const completion = { model: "smollm2", prompt: PROMPT, max_tokens: 400, temperature: 0, seed: 3 };

async function record(id: string, key = KEY): Promise<Doc> {
  return (await (await call(fx.url, `/v1/requests/${id}`, { key })).json()) as Doc;
}

describe("cancelling requests (DELETE /v1/requests/{id})", () => {
  it("skips a queued request and stops a running generation, charging exactly what ran", async () => {
    // A streams, so the test knows when it is generating; it keeps reading so it never disconnects.
    const streaming = await call(fx.url, "/v1/completions", {
      key: KEY,
      body: { ...completion, stream: true },
    });
    expect(streaming.status).toBe(200);
    const runningId = streaming.headers.get("x-request-id")!;
    const reader = streaming.body!.getReader();
    const decoder = new TextDecoder();
    let streamed = "";
    while ((streamed.match(/^data: \{/gm) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended before the generation was under way");
      streamed += decoder.decode(value, { stream: true });
    }
    const drained = (async () => {
      for (;;) if ((await reader.read()).done) return;
    })();

    // B waits in the queue behind A (prefetch 1).
    const queued = await call(fx.url, "/v1/completions", {
      key: KEY,
      body: completion,
      headers: { prefer: "respond-async" },
    });
    expect(queued.status).toBe(202);
    const queuedId = ((await queued.json()) as Doc).id as string;

    // Another tenant can neither cancel nor see either of them: 404, as if they did not exist.
    for (const id of [runningId, queuedId]) {
      const refused = await errorOf(
        await call(fx.url, `/v1/requests/${id}`, { method: "DELETE", key: OTHER_KEY }),
      );
      expect(refused).toMatchObject({ status: 404, code: "request_not_found" });
    }

    const cancelQueued = await call(fx.url, `/v1/requests/${queuedId}`, { method: "DELETE", key: KEY });
    expect(cancelQueued.status).toBe(202);
    expect(await cancelQueued.json()).toMatchObject({ id: queuedId, cancellation: "requested" });
    const cancelRunning = await call(fx.url, `/v1/requests/${runningId}`, { method: "DELETE", key: KEY });
    expect(cancelRunning.status).toBe(202);
    await drained;

    await eventually(async () => (await record(runningId)).status === "cancelled", 60_000);
    await eventually(async () => (await record(queuedId)).status === "cancelled", 60_000);

    const running = await record(runningId);
    const promptTokens = tokenizer.prompt(PROMPT);
    expect(running.tokens.input).toBe(promptTokens);
    expect(running.tokens.output).toBeGreaterThanOrEqual(3);
    expect(running.tokens.output).toBeLessThan(400);
    expect(running.tokens.charged).toBe(running.tokens.input + running.tokens.output);
    expect(running.error).toMatchObject({ code: "cancelled" });
    const text = running.result.outputs.find((o: Doc) => o.name === "text").data[0] as string;
    expect(text.length).toBeGreaterThan(0);
    expect(running.result.outputs.find((o: Doc) => o.name === "finish_reason").data[0]).toBe("cancelled");

    const skipped = await record(queuedId);
    expect(skipped.tokens).toMatchObject({ input: 0, output: 0, charged: 0 });
    expect(skipped.error).toMatchObject({ code: "cancelled" });

    // Redis (every window, nothing left in flight) and PostgreSQL agree with the records.
    const charged = running.tokens.charged as number;
    const usage = (await (await call(fx.url, "/v1/usage", { key: KEY })).json()) as Doc;
    expect(usage.limits.tokensPerMonth).toMatchObject({ limit: 1_000_000, used: charged });
    expect(usage.limits.tokensPerDay).toMatchObject({
      limit: 100_000,
      used: charged,
      remaining: 100_000 - charged,
    });
    expect(usage.inFlight).toEqual({ count: 0, requests: [] });
    expect(usage.tokens.today).toMatchObject({ tokens: charged, requests: 2 });
    expect(usage.tokens.today.byModel).toEqual([
      { kind: "model", name: "smollm2", tokens: charged, requests: 2 },
    ]);
    const day = utcDay(Date.now());
    const pg = await fx.pool.query(
      `SELECT tokens::int, requests::int FROM "${fx.schema}".tenant_usage WHERE tenant = 'acme' AND day = $1`,
      [day],
    );
    expect(pg.rows[0]).toEqual({ tokens: charged, requests: 2 });

    // Both ended: a second cancellation is refused with a clear code.
    const again = await errorOf(
      await call(fx.url, `/v1/requests/${runningId}`, { method: "DELETE", key: KEY }),
    );
    expect(again).toMatchObject({ status: 409, code: "request_finished" });
    expect(again.body).toMatchObject({ error: { status: "cancelled" } });
  }, 120_000);

  it("answers a synchronous caller of a cancelled request with 409 request_cancelled", async () => {
    const waiting = call(fx.url, "/v1/completions", { key: KEY, body: completion });
    let id: string | undefined;
    await eventually(async () => {
      const usage = (await (await call(fx.url, "/v1/usage", { key: KEY })).json()) as Doc;
      id = usage.inFlight.requests[0]?.id as string | undefined;
      return id !== undefined;
    }, 30_000);
    expect((await call(fx.url, `/v1/requests/${id}`, { method: "DELETE", key: KEY })).status).toBe(202);
    const answer = await waiting;
    expect(answer.status).toBe(409);
    expect(((await answer.json()) as Doc).error).toMatchObject({ code: "request_cancelled" });
  }, 120_000);
});

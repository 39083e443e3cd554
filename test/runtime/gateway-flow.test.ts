// Requests through the gateway end to end on real services: the gateway publishes to RabbitMQ, a
// hand-rolled worker (this test) answers on the results queue, the REAL collector records the
// result in PostgreSQL, settles the quota and notifies the gateway over Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishJson } from "../../runtime/shared/amqp.js";
import { names } from "../../runtime/shared/contracts/index.js";
import {
  call,
  errorOf,
  echoResult,
  gatewayFixture,
  KEYS,
  standardConfig,
  standardTenants,
  type GatewayFixture,
} from "./helpers/gateway-fixture.js";

let fx: GatewayFixture;
const BURST_KEY = "burst-key-0123456789";

beforeAll(async () => {
  const base = standardConfig();
  fx = await gatewayFixture({
    config: {
      ...base,
      models: [...base.models!, { name: "full", uri: "file:///models/full.onnx" }],
      tenants: [...base.tenants!, { name: "burst" }],
    },
    tenants: [
      ...standardTenants({ limited: { tokensPerMinute: 25 }, other: { tokensPerDay: 5 } }),
      { name: "burst", apiKey: BURST_KEY, limits: { tokensPerMinute: 1000 } },
    ],
    queues: { echo: {}, text: {}, full: { maxLength: 1 } },
    collector: true,
  });
});

afterAll(async () => {
  await fx?.close();
});

const echoBody = (extra: Record<string, unknown> = {}) => ({
  inputs: [
    {
      name: "x",
      datatype: "FP32",
      shape: [2, 3],
      data: [
        [1, 2, 3],
        [4, 5, 6.5],
      ],
    },
  ],
  ...extra,
});

// Response documents are checked with toMatchObject; loose typing keeps the assertions readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

async function json(res: Response): Promise<Doc> {
  return (await res.json()) as Doc;
}

/** Polls GET /v1/requests/{id} until it reports a final status. */
async function finalState(id: string, key = KEYS.acme): Promise<Doc> {
  for (let i = 0; i < 200; i++) {
    const body = await json(await call(fx.url, `/v1/requests/${id}`, { key }));
    if (body.status === "succeeded" || body.status === "failed") return body;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`request ${id} did not finish`);
}

describe("synchronous round trips", () => {
  it("answers 200 with the OIP response and settles the quota exactly", async () => {
    const worker = await fx.serve("echo", (t) => echoResult(t, { x: "y" }));
    try {
      const res = await call(fx.url, "/v2/models/echo/infer", {
        key: KEYS.acme,
        body: echoBody({ id: "client-1" }),
      });
      expect(res.status).toBe(200);
      const body = await json(res);
      expect(body).toEqual({
        model_name: "echo",
        model_version: "1",
        id: "client-1",
        parameters: { request_id: res.headers.get("x-request-id") },
        outputs: [{ name: "y", datatype: "FP32", shape: [2, 3], data: [1, 2, 3, 4, 5, 6.5] }],
      });
      expect(worker.tasks).toHaveLength(1);
      expect(worker.tasks[0]).toMatchObject({
        tenant: "acme",
        inputTokens: 0,
        reservedTokens: 10,
        route: [{ model: "echo" }],
      });
      // Fixed mode: 0 input tokens + 1 output token charged, the other 9 reserved tokens refunded.
      expect(await fx.quota.usage("acme")).toMatchObject({
        tokensThisMinute: 1,
        inFlight: 0,
        requestsThisMinute: 1,
      });
      const state = await json(
        await call(fx.url, `/v1/requests/${body.parameters.request_id}`, { key: KEYS.acme }),
      );
      expect(state).toMatchObject({
        status: "succeeded",
        tokens: { reserved: 10, input: 0, output: 1, charged: 1 },
      });
    } finally {
      await worker.stop();
    }
  });

  it("charges characters of text inputs and filters outputs", async () => {
    const worker = await fx.serve("text", (t) => ({ ...echoResult(t), outputTokens: 3 }));
    try {
      // The day's counter, not the minute's: a minute that ends mid-test would reset the latter.
      const before = (await fx.quota.usage("acme")).tokensToday;
      const res = await call(fx.url, "/v2/models/text/infer", {
        key: KEYS.acme,
        body: {
          inputs: [{ name: "text", datatype: "BYTES", shape: [2], data: ["héllo", "🙂!"] }],
          outputs: [{ name: "text" }],
        },
      });
      expect(res.status).toBe(200);
      expect((await json(res)).outputs).toEqual([
        { name: "text", datatype: "BYTES", shape: [2], data: ["héllo", "🙂!"] },
      ]);
      expect(worker.tasks[0]).toMatchObject({ inputTokens: 7, reservedTokens: 27 });
      expect((await fx.quota.usage("acme")).tokensToday - before).toBe(10);
    } finally {
      await worker.stop();
    }
  });

  it("answers 504 with the id to poll once the deadline passes, and the request still completes", async () => {
    const res = await call(fx.url, "/v2/models/echo/infer", {
      key: KEYS.acme,
      body: echoBody({ parameters: { timeout: 150 } }),
    });
    const error = await errorOf(res);
    expect(error).toMatchObject({ status: 504, code: "sync_timeout" });
    const id = String(error.body.request_id);
    expect(error.message).toContain(`poll GET /v1/requests/${id}`);
    expect(res.headers.get("location")).toBe(`/v1/requests/${id}`);
    expect(res.headers.get("x-request-id")).toBe(id);
    expect(error.body.location).toBe(`/v1/requests/${id}`);
    // The id is handed out only with the 504: the request reads as queued from then on.
    const queued = await json(await call(fx.url, `/v1/requests/${id}`, { key: KEYS.acme }));
    expect(queued).toMatchObject({ id, status: "queued", target: { kind: "model", name: "echo" } });
    const task = await fx.answerOne("echo");
    expect(task.requestId).toBe(id);
    expect(task.parameters).toBeUndefined(); // the gateway's own `timeout` is not forwarded
    expect(await finalState(id)).toMatchObject({ status: "succeeded" });
  });

  it("answers a failed inference with the worker's code", async () => {
    const worker = await fx.serve("echo", () => ({
      status: "failed",
      error: { code: "invalid_input", message: "the model refused it" },
    }));
    try {
      const res = await call(fx.url, "/v2/models/echo/infer", { key: KEYS.acme, body: echoBody() });
      expect(await errorOf(res)).toMatchObject({
        status: 422,
        code: "inference_rejected",
        message: "invalid_input: the model refused it",
      });
    } finally {
      await worker.stop();
    }
  });

  it("answers waiting synchronous calls with 504 and the id when the gateway shuts down", async () => {
    const other = await fx.another({});
    const waiting = call(other.url, "/v2/models/echo/infer", { key: KEYS.acme, body: echoBody() });
    for (let i = 0; i < 200 && (await fx.depth("echo")) === 0; i++)
      await new Promise((r) => setTimeout(r, 10));
    const started = Date.now();
    await other.close();
    const res = await waiting;
    expect(await errorOf(res)).toMatchObject({ status: 504, code: "sync_timeout" });
    expect(Date.now() - started).toBeLessThan(5_000);
    await fx.answerOne("echo");
  });
});

describe("asynchronous requests", () => {
  it("answers 202 at once, then GET shows queued and later the result; other tenants get 404", async () => {
    const res = await call(fx.url, "/v2/models/echo/infer", {
      key: KEYS.acme,
      body: echoBody(),
      headers: { prefer: "respond-async" },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("preference-applied")).toBe("respond-async");
    const { id } = await json(res);
    const queued = await json(await call(fx.url, `/v1/requests/${id}`, { key: KEYS.acme }));
    expect(queued).toMatchObject({
      id,
      status: "queued",
      target: { kind: "model", name: "echo" },
      finishedAt: null,
    });
    const foreign = await call(fx.url, `/v1/requests/${id}`, { key: KEYS.other });
    expect(foreign.status).toBe(404);
    expect((await errorOf(foreign)).code).toBe("request_not_found");

    await fx.answerOne("echo");
    const done = await finalState(id);
    expect(done).toMatchObject({
      status: "succeeded",
      result: { model_name: "echo", outputs: [{ name: "x", data: [1, 2, 3, 4, 5, 6.5] }] },
    });
    expect((await call(fx.url, `/v1/requests/${id}`, { key: KEYS.other })).status).toBe(404);
  });
});

describe("Idempotency-Key", () => {
  it("returns the first request for a retry and never publishes it again", async () => {
    const headers = { "idempotency-key": "order-42", prefer: "respond-async" };
    const first = await json(
      await call(fx.url, "/v2/models/echo/infer", { key: KEYS.acme, body: echoBody(), headers }),
    );
    const retry = await call(fx.url, "/v2/models/echo/infer", { key: KEYS.acme, body: echoBody(), headers });
    expect(retry.status).toBe(202);
    expect((await json(retry)).id).toBe(first.id);
    expect(await fx.depth("echo")).toBe(1);

    await fx.answerOne("echo");
    await finalState(first.id);
    // A synchronous retry after completion gets the first result, without a new message.
    const again = await call(fx.url, "/v2/models/echo/infer", {
      key: KEYS.acme,
      body: echoBody(),
      headers: { "idempotency-key": "order-42" },
    });
    expect(again.status).toBe(200);
    expect((await json(again)).parameters.request_id).toBe(first.id);
    expect(await fx.depth("echo")).toBe(0);
    // The same key for another target is a conflict; another tenant's key space is separate.
    const conflict = await call(fx.url, "/v2/models/text/infer", {
      key: KEYS.acme,
      body: { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["a"] }] },
      headers,
    });
    expect(conflict.status).toBe(409);
    expect((await errorOf(conflict)).code).toBe("idempotency_key_conflict");
  });
});

describe("quota and back-pressure", () => {
  it("refuses over tokensPerMinute with 429, Retry-After and X-RateLimit-*", async () => {
    const headers = { prefer: "respond-async" };
    for (let i = 0; i < 2; i++) {
      expect(
        (await call(fx.url, "/v2/models/echo/infer", { key: KEYS.limited, body: echoBody(), headers }))
          .status,
      ).toBe(202);
    }
    const refused = await call(fx.url, "/v2/models/echo/infer", {
      key: KEYS.limited,
      body: echoBody(),
      headers,
    });
    expect(refused.status).toBe(429);
    expect((await errorOf(refused)).code).toBe("quota_exceeded");
    const retryAfter = Number(refused.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(refused.headers.get("x-ratelimit-limit")).toBe("25");
    expect(refused.headers.get("x-ratelimit-remaining")).toBe("5");
    expect(refused.headers.get("x-ratelimit-reset")).toBe(String(retryAfter));
    expect(await fx.depth("echo")).toBe(2);
    await fx.answerOne("echo");
    await fx.answerOne("echo");
  });

  it("refuses a request larger than the whole window with 422", async () => {
    const res = await call(fx.url, "/v2/models/echo/infer", { key: KEYS.other, body: echoBody() });
    expect(res.status).toBe(422);
    expect((await errorOf(res)).code).toBe("request_exceeds_quota");
  });

  it("answers 503 with Retry-After when the queue is full, and releases the reservation", async () => {
    // Quorum queues reject once they are over the limit: fill acme's lane until the broker says no.
    const queue = names(fx.prefix).modelLane("full", "acme");
    let refused = false;
    for (let i = 0; i < 5 && !refused; i++) {
      refused = await publishJson(fx.channel, queue, { filler: i }, { messageId: `filler-${i}` }).then(
        () => false,
        () => true,
      );
    }
    expect(refused).toBe(true);
    const depth = await fx.depth("full");
    const before = await fx.quota.usage("acme");
    const res = await call(fx.url, "/v2/models/full/infer", {
      key: KEYS.acme,
      body: { inputs: [{ name: "in", datatype: "FP32", shape: [1], data: [1] }] },
    });
    expect(res.status).toBe(503);
    expect((await errorOf(res)).code).toBe("queue_full");
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    const after = await fx.quota.usage("acme");
    expect(after).toMatchObject({
      tokensThisMinute: before.tokensThisMinute,
      requestsThisMinute: before.requestsThisMinute,
      inFlight: 0,
    });
    expect(await fx.depth("full")).toBe(depth);
  });

  it("counts requests in /metrics", async () => {
    const text = await (await call(fx.url, "/metrics")).text();
    expect(text).toMatch(/turnpike_requests_total\{[^}]*target="echo"[^}]*code="200"[^}]*\} [1-9]/);
    expect(text).toMatch(
      /turnpike_quota_rejections_total\{[^}]*tenant="limited"[^}]*limit="tokensPerMinute"/,
    );
  });

  it("64 concurrent clients against a 1,000-token limit: at most 1,000 reserved, every reservation settled", async () => {
    // "text" charges characters: 25 input characters + 20 max output tokens = 45 reserved each.
    const body = { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["a".repeat(25)] }] };
    const answers = await Promise.all(
      Array.from({ length: 64 }, () =>
        call(fx.url, "/v2/models/text/infer", { key: BURST_KEY, body, headers: { prefer: "respond-async" } }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(22);
    expect(statuses.filter((s) => s === 429)).toHaveLength(42);
    expect((await fx.quota.usage("burst")).tokensThisMinute).toBe(22 * 45);

    const worker = await fx.serve("text", (t) => ({ ...echoResult(t), outputTokens: 3 }));
    try {
      for (let i = 0; i < 400 && (await fx.quota.usage("burst")).inFlight > 0; i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      // Each settled at its actual 25 + 3 tokens; nothing is left reserved.
      expect(await fx.quota.usage("burst")).toMatchObject({ tokensThisMinute: 22 * 28, inFlight: 0 });
      expect(worker.tasks).toHaveLength(22);
    } finally {
      await worker.stop();
    }
  });
});

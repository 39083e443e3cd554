// GET /v1/requests/{id}/events on real services with the real collector: the final event arrives
// exactly once whether the result lands before the stream subscribes, between subscribing and
// reading the state (forced deterministically through the gateway's afterSubscribe hook), or
// after; Last-Event-ID is honoured; an idle stream sends heartbeats and ends with `timeout`.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { GatewayHooks } from "../../runtime/gateway/context.js";
import { call, gatewayFixture, KEYS, type GatewayFixture } from "./helpers/gateway-fixture.js";
import { readSse } from "./helpers/gateway-sse.js";

let fx: GatewayFixture;
let afterSubscribe: GatewayHooks["afterSubscribe"];

beforeAll(async () => {
  fx = await gatewayFixture({
    queues: { echo: {} },
    collector: true,
    hooks: { afterSubscribe: (event) => afterSubscribe?.(event) },
  });
});

afterAll(async () => {
  await fx?.close();
});

/** Submits an echo request asynchronously (no worker runs, so it stays queued). */
async function submit(): Promise<string> {
  const res = await call(fx.url, "/v2/models/echo/infer", {
    key: KEYS.acme,
    body: { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [7, 8, 9] }] },
    headers: { prefer: "respond-async" },
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

function events(url: string, id: string, headers: Record<string, string> = {}) {
  return call(url, `/v1/requests/${id}/events`, {
    key: KEYS.acme,
    headers: { accept: "text/event-stream", ...headers },
  });
}

describe("SSE events", () => {
  it("sends the final event once when the result lands between subscribe and read", async () => {
    const id = await submit();
    let hookRan = false;
    afterSubscribe = async ({ requestId, notice }) => {
      if (requestId !== id) return;
      // The worker answers, the collector records and notifies, and this gateway receives the
      // notice, all before the stream reads the state.
      await fx.answerOne("echo");
      await notice;
      hookRan = true;
    };
    try {
      const res = await events(fx.url, id);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("text/event-stream");
      const stream = readSse(res);
      await stream.ended;
      expect(hookRan).toBe(true);
      expect(stream.events.map((e) => e.event)).toEqual(["result"]);
      expect(stream.events[0]).toMatchObject({
        id: "result",
        data: { id, status: "succeeded", result: { outputs: [{ name: "x", data: [7, 8, 9] }] } },
      });
    } finally {
      afterSubscribe = undefined;
    }
  });

  it("sends status first and the final event when the result lands later", async () => {
    const id = await submit();
    const stream = readSse(await events(fx.url, id));
    const status = await stream.waitFor((e) => e.event === "status");
    expect(status).toMatchObject({ id: "status-queued", data: { id, status: "queued" } });
    await fx.answerOne("echo");
    await stream.ended;
    expect(stream.events.map((e) => e.event)).toEqual(["status", "result"]);
    expect(stream.events[1]).toMatchObject({ data: { status: "succeeded" } });

    // Already final: the stream sends the result at once; a client that saw it gets 204.
    const again = readSse(await events(fx.url, id));
    await again.ended;
    expect(again.events.map((e) => e.event)).toEqual(["result"]);
    const seen = await events(fx.url, id, { "last-event-id": "result" });
    expect(seen.status).toBe(204);
  });

  it("is tenant-scoped: another tenant's request is a 404 JSON error", async () => {
    const id = await submit();
    const res = await call(fx.url, `/v1/requests/${id}/events`, { key: KEYS.other });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("request_not_found");
    expect((await call(fx.url, `/v1/requests/${id}/events`)).status).toBe(401);
    await fx.answerOne("echo");
  });

  it("sends heartbeats, skips the status already seen, and ends with a timeout event", async () => {
    const quick = await fx.another({ TURNPIKE_SSE_TIMEOUT_MS: "400", TURNPIKE_SSE_HEARTBEAT_MS: "100" });
    const id = await submit();
    const stream = readSse(await events(quick.url, id, { "last-event-id": "status-queued" }));
    await stream.ended;
    expect(stream.comments.filter((c) => c === "heartbeat").length).toBeGreaterThanOrEqual(2);
    expect(stream.events.map((e) => e.event)).toEqual(["timeout"]);
    expect(stream.events[0]!.data).toMatchObject({ id });
    await fx.answerOne("echo");
  });
});

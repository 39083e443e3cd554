// The tenant's own API on real services (gateway, RabbitMQ, the real collector, Redis,
// PostgreSQL; a hand-rolled worker answers the model queues): GET /v1/usage equals what Redis and
// PostgreSQL hold after a mixed load, GET /v1/requests pages newest first with a cursor that stays
// stable while new requests arrive, GET /v1/usage/daily totals days for invoices, and a tenant
// never sees or cancels another's requests (404, as if they did not exist).
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RequestRecords } from "../../runtime/shared/db/index.js";
import { utcDay } from "../../runtime/shared/db/request-sql.js";
import type { InferenceResult } from "../../runtime/shared/contracts/index.js";
import {
  call,
  echoResult,
  errorOf,
  gatewayFixture,
  KEYS,
  standardTenants,
  type FakeWorker,
  type GatewayFixture,
} from "./helpers/gateway-fixture.js";

let fx: GatewayFixture;
let echo: FakeWorker;
let text: FakeWorker;
const LIMITS = {
  tokensPerMonth: 1_000_000,
  tokensPerDay: 100_000,
  tokensPerMinute: 50_000,
  requestsPerMinute: 10_000,
  concurrentRequests: 100,
};

beforeAll(async () => {
  fx = await gatewayFixture({
    tenants: standardTenants({ acme: LIMITS }),
    queues: { echo: {}, text: {} },
    collector: true,
  });
  echo = await fx.serve("echo");
  // Every third text request fails (charged nothing); the others produce 3 tokens.
  let n = 0;
  text = await fx.serve("text", (t) =>
    ++n % 3 === 0
      ? { status: "failed", error: { code: "model_error", message: "boom" } }
      : { ...echoResult(t), outputTokens: 3 },
  );
});

afterAll(async () => {
  await echo?.stop();
  await text?.stop();
  await fx?.close();
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;

const echoBody = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] };
const textBody = (s: string) => ({ inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: [s] }] });

async function get(path: string, key = KEYS.acme): Promise<Doc> {
  const res = await call(fx.url, path, { key });
  expect(res.status, `${path}: ${res.status}`).toBe(200);
  return (await res.json()) as Doc;
}

/** Submits `count` requests of the mixed load and waits for every answer. */
async function mixedLoad(count: number, key = KEYS.acme): Promise<string[]> {
  const answers = await Promise.all(
    Array.from({ length: count }, (_, i) =>
      i % 2 === 0
        ? call(fx.url, "/v2/models/echo/infer", { key, body: echoBody })
        : call(fx.url, "/v2/models/text/infer", { key, body: textBody(`line ${i} ${"x".repeat(i)}`) }),
    ),
  );
  return answers.map((a) => a.headers.get("x-request-id")!);
}

/** Every page of GET /v1/requests with `query`, calling `between` after each page. */
async function allPages(query: string, between: () => Promise<unknown> = async () => undefined) {
  const items: Doc[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const sep = query ? "&" : "";
    const page: Doc = await get(`/v1/requests?${query}${cursor ? `${sep}cursor=${cursor}` : ""}`);
    items.push(...page.data);
    cursor = page.nextCursor;
    pages++;
    await between();
  } while (cursor && pages < 100);
  return { items, pages };
}

describe("GET /v1/usage after a mixed load", () => {
  it("reports every limit, tokens by model and in-flight requests exactly as Redis and PostgreSQL hold them", async () => {
    await mixedLoad(30);
    const usage = await get("/v1/usage");
    const redis = await fx.quota.usage("acme", Date.parse(usage.at));
    expect(usage.limits).toEqual({
      tokensPerMonth: {
        limit: LIMITS.tokensPerMonth,
        used: redis.tokensThisMonth,
        remaining: LIMITS.tokensPerMonth - redis.tokensThisMonth,
        resetsAt: expect.stringMatching(/-01T00:00:00\.000Z$/),
      },
      tokensPerDay: {
        limit: LIMITS.tokensPerDay,
        used: redis.tokensToday,
        remaining: LIMITS.tokensPerDay - redis.tokensToday,
        resetsAt: expect.stringMatching(/T00:00:00\.000Z$/),
      },
      tokensPerMinute: expect.objectContaining({ used: redis.tokensThisMinute }),
      requestsPerMinute: expect.objectContaining({ used: redis.requestsThisMinute }),
      concurrentRequests: { limit: 100, used: 0, remaining: 100, resetsAt: null },
    });
    expect(Date.parse(usage.limits.tokensPerMinute.resetsAt) - Date.parse(usage.at)).toBeLessThanOrEqual(
      60_000,
    );
    expect(usage.inFlight).toEqual({ count: 0, requests: [] });

    // PostgreSQL: the records, tenant_usage and the per-model split all say the same.
    const day = utcDay(Date.parse(usage.at));
    const records = await fx.pool.query(
      `SELECT target, sum(charged_tokens)::int AS tokens, count(*)::int AS requests
       FROM "${fx.schema}".requests WHERE tenant = 'acme' GROUP BY target ORDER BY target`,
    );
    const byModel = records.rows.map((r) => ({
      kind: "model",
      name: r.target,
      tokens: r.tokens,
      requests: r.requests,
    }));
    const total = byModel.reduce((sum, m) => sum + m.tokens, 0);
    const usageRow = await fx.pool.query(
      `SELECT tokens::int, requests::int FROM "${fx.schema}".tenant_usage WHERE tenant = 'acme' AND day = $1`,
      [day],
    );
    expect(usageRow.rows[0]).toEqual({ tokens: total, requests: 30 });
    expect(usage.tokens.today).toEqual({ day, tokens: total, requests: 30, byModel });
    expect(usage.tokens.thisMonth).toEqual({ month: day.slice(0, 7), tokens: total, requests: 30, byModel });
    // Everything finished, so Redis's windows hold exactly what the records charged.
    expect(redis.tokensToday).toBe(total);
    expect(redis.tokensThisMonth).toBe(total);
    expect(byModel.map((m) => m.name)).toEqual(["echo", "text"]);
  });

  it("lists requests still in flight, and shows another tenant nothing of acme's", async () => {
    await echo.stop();
    const id = randomUUID();
    const pending = call(fx.url, "/v2/models/echo/infer", {
      key: KEYS.acme,
      body: { ...echoBody, id },
      headers: { prefer: "respond-async" },
    });
    const requestId = (await pending).headers.get("x-request-id")!;
    const usage = await get("/v1/usage");
    expect(usage.inFlight.count).toBe(1);
    expect(usage.inFlight.requests).toEqual([{ id: requestId, reservedAt: expect.any(String) }]);
    expect(usage.limits.concurrentRequests.used).toBe(1);

    const other = await get("/v1/usage", KEYS.other);
    expect(other.inFlight).toEqual({ count: 0, requests: [] });
    expect(other.tokens.today).toMatchObject({ tokens: 0, requests: 0, byModel: [] });
    expect(other.limits).toEqual({});
    // Neither readable nor cancellable by another tenant: 404 like an unknown id.
    for (const method of ["GET", "DELETE"]) {
      const refused = await errorOf(
        await call(fx.url, `/v1/requests/${requestId}`, { method, key: KEYS.other }),
      );
      expect(refused).toMatchObject({ status: 404, code: "request_not_found" });
    }
    const unknown = await errorOf(
      await call(fx.url, `/v1/requests/${randomUUID()}`, { method: "DELETE", key: KEYS.other }),
    );
    expect(unknown).toMatchObject({ status: 404, code: "request_not_found" });

    // Its owner may cancel it while it waits; the marker is the tenant's own.
    const cancelled = await call(fx.url, `/v1/requests/${requestId}`, { method: "DELETE", key: KEYS.acme });
    expect(cancelled.status).toBe(202);
    expect(await fx.redis.exists(`tp:{${fx.prefix}/acme}:cancel:${requestId}`)).toBe(1);
    echo = await fx.serve("echo");
    await fx.redis.del(`tp:{${fx.prefix}/acme}:cancel:${requestId}`);
  });
});

describe("GET /v1/requests", () => {
  it("pages newest first with a cursor: no duplicates and no gaps while new requests arrive", async () => {
    const before = await fx.pool.query<{ id: string }>(
      `SELECT id::text FROM "${fx.schema}".requests WHERE tenant = 'acme' ORDER BY submitted_at DESC, id DESC`,
    );
    const expected = before.rows.map((r) => r.id);
    expect(expected.length).toBeGreaterThanOrEqual(30);
    // Each page is followed by more requests that finish before the next page is read.
    const { items, pages } = await allPages("limit=7", () => mixedLoad(3));
    expect(pages).toBeGreaterThanOrEqual(Math.ceil(expected.length / 7));
    const ids = items.map((i) => i.id as string);
    expect(new Set(ids).size).toBe(ids.length);
    // The first page already existed; everything after it is exactly the snapshot, in order.
    const fromFirst = ids.slice(ids.indexOf(expected[0]!));
    expect(fromFirst).toEqual(expected);
    const times = items.map((i) => Date.parse(i.submittedAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
    expect(items[0]).toMatchObject({
      status: expect.stringMatching(/^(succeeded|failed)$/),
      target: { kind: "model" },
      tokens: { reserved: expect.any(Number), charged: expect.any(Number) },
    });
  });

  it("filters by status, model and since, and only ever shows the caller's own requests", async () => {
    const failed = (await allPages("status=failed&limit=100")).items;
    expect(failed.length).toBeGreaterThan(0);
    expect(
      failed.every(
        (i) => i.status === "failed" && i.target.name === "text" && i.error.code === "model_error",
      ),
    ).toBe(true);
    const echoes = (await allPages("model=echo&limit=50")).items;
    expect(echoes.length).toBeGreaterThan(0);
    expect(echoes.every((i) => i.target.name === "echo")).toBe(true);

    const mark = new Date().toISOString();
    const fresh = await mixedLoad(4);
    const since = (await allPages(`since=${encodeURIComponent(mark)}`)).items.map((i) => i.id);
    expect(since.sort()).toEqual([...fresh].sort());

    // "other" has requests of its own; neither tenant's list holds the other's.
    const theirs = await mixedLoad(4, KEYS.other);
    const otherIds = (await get("/v1/requests?limit=100", KEYS.other)).data.map((i: Doc) => i.id);
    expect(otherIds.sort()).toEqual([...theirs].sort());
    const acmeIds = new Set((await allPages("limit=100")).items.map((i) => i.id));
    expect(theirs.some((id) => acmeIds.has(id))).toBe(false);
  });

  it.each([
    ["limit=0", "invalid_parameter", /limit/],
    ["limit=101", "invalid_parameter", /1 to 100/],
    ["status=queued", "invalid_parameter", /no record yet/],
    ["status=done", "invalid_parameter", /succeeded, failed, cancelled/],
    ["model=Not_A_Name", "invalid_parameter", /model/],
    ["since=yesterday", "invalid_parameter", /ISO 8601/],
    ["cursor=not-a-cursor", "invalid_cursor", /cursor/],
    [
      `cursor=${Buffer.from('["2026-01-01T00:00:00.000000Z","x"]').toString("base64url")}`,
      "invalid_cursor",
      /cursor/,
    ],
  ])("refuses %s with 400 %s", async (query, code, message) => {
    const error = await errorOf(await call(fx.url, `/v1/requests?${query}`, { key: KEYS.acme }));
    expect(error).toMatchObject({ status: 400, code });
    expect(error.message).toMatch(message);
    expect(error.body).toMatchObject({ error: { code, message: expect.any(String) } });
  });

  it("refuses to cancel a finished request with 409 request_finished", async () => {
    const [id] = await mixedLoad(1);
    const error = await errorOf(
      await call(fx.url, `/v1/requests/${id}`, { method: "DELETE", key: KEYS.acme }),
    );
    expect(error).toMatchObject({ status: 409, code: "request_finished" });
    expect(error.body).toMatchObject({ error: { id, status: "succeeded" } });
    const bad = await errorOf(
      await call(fx.url, "/v1/requests/not-an-id", { method: "DELETE", key: KEYS.acme }),
    );
    expect(bad).toMatchObject({ status: 400, code: "invalid_request_id" });
    const anonymous = await errorOf(await call(fx.url, `/v1/requests/${id}`, { method: "DELETE" }));
    expect(anonymous).toMatchObject({ status: 401, code: "unauthenticated" });
  });
});

describe("GET /v1/usage/daily", () => {
  it("totals each day of the range for invoices, zero on days without requests", async () => {
    const records = new RequestRecords(fx.pool, fx.schema);
    const at = (day: string, hour: number) => Date.parse(`${day}T${String(hour).padStart(2, "0")}:00:00Z`);
    const result = (day: string, hour: number, tokens: number, target = "echo"): InferenceResult => ({
      requestId: randomUUID(),
      tenant: "acme",
      target: { kind: "model", name: target },
      status: "succeeded",
      reservedTokens: tokens,
      inputTokens: tokens - 1,
      outputTokens: 1,
      submittedAt: at(day, hour),
      finishedAt: at(day, hour) + 1000,
      steps: [],
    });
    await records.upsertResults([
      result("2025-03-01", 0, 10),
      result("2025-03-01", 23, 5, "text"),
      result("2025-03-03", 12, 7),
      result("2025-02-28", 23, 100),
      { ...result("2025-03-03", 13, 50), tenant: "other" },
    ]);
    const daily = await get("/v1/usage/daily?from=2025-03-01&to=2025-03-03");
    expect(daily).toEqual({
      tenant: "acme",
      from: "2025-03-01",
      to: "2025-03-03",
      days: [
        {
          day: "2025-03-01",
          tokens: 15,
          requests: 2,
          byModel: [
            { kind: "model", name: "echo", tokens: 10, requests: 1 },
            { kind: "model", name: "text", tokens: 5, requests: 1 },
          ],
        },
        { day: "2025-03-02", tokens: 0, requests: 0, byModel: [] },
        {
          day: "2025-03-03",
          tokens: 7,
          requests: 1,
          byModel: [{ kind: "model", name: "echo", tokens: 7, requests: 1 }],
        },
      ],
    });
    const today = utcDay(Date.now());
    const defaults = await get("/v1/usage/daily");
    expect(defaults).toMatchObject({ from: `${today.slice(0, 7)}-01`, to: today });
    expect(defaults.days.at(-1)).toMatchObject({
      day: today,
      tokens: (await get("/v1/usage")).tokens.today.tokens,
    });
  });

  it.each([
    ["from=2025-02-30&to=2025-03-01", /from.*YYYY-MM-DD/],
    ["from=2025-03-01&to=03/05/2025", /to.*YYYY-MM-DD/],
    ["from=2025-03-05&to=2025-03-01", /after/],
    ["from=2024-01-01&to=2025-03-01", /at most 366/],
  ])("refuses %s with 400 and the reason", async (query, message) => {
    const error = await errorOf(await call(fx.url, `/v1/usage/daily?${query}`, { key: KEYS.acme }));
    expect(error).toMatchObject({ status: 400, code: "invalid_parameter" });
    expect(error.message).toMatch(message);
  });
});

// The gateway's HTTP surface on real Redis, RabbitMQ and PostgreSQL: health, metrics, auth
// (API keys, JWT), model metadata and readiness, CORS, request-rate limits, and a table of
// malformed requests that must each get the right 4xx code and enqueue nothing.
import { SignJWT } from "jose";
import { tenantKeys } from "../../runtime/shared/contracts/index.js";
import { hashApiKey } from "../../runtime/shared/quota/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  call,
  errorOf,
  gatewayFixture,
  KEYS,
  standardConfig,
  type GatewayFixture,
} from "./helpers/gateway-fixture.js";

const JWT_SECRET = "a-test-secret-that-is-long-enough-0123456789";
let fx: GatewayFixture;

/** A pipeline whose second step reads the request, not the first step's outputs: not run as a chain. */
const DAG_PIPELINE = {
  name: "dag",
  steps: [
    { name: "decode", processor: "image-to-tensor" },
    { name: "rec", model: "ocr", dependsOn: [], inputFrom: "request" },
  ],
};

beforeAll(async () => {
  const config = standardConfig();
  fx = await gatewayFixture({
    config: { ...config, pipelines: [...(config.pipelines ?? []), DAG_PIPELINE] },
    queues: { echo: {}, text: {}, ocr: {} },
    env: {
      TURNPIKE_CORS_ORIGINS: "https://app.example.com,http://localhost:3000",
      TURNPIKE_BODY_LIMIT_BYTES: String(64 * 1024),
      TURNPIKE_JWT_SECRET: JWT_SECRET,
      TURNPIKE_JWT_ISSUER: "https://issuer.example.com",
    },
  });
});

afterAll(async () => {
  await fx?.close();
});

describe("health and metrics (no auth)", () => {
  it("answers live, ready and /metrics", async () => {
    expect((await call(fx.url, "/v2/health/live")).status).toBe(200);
    const ready = await call(fx.url, "/v2/health/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true });
    const metrics = await call(fx.url, "/metrics");
    expect(metrics.status).toBe(200);
    expect(await metrics.text()).toContain("turnpike_requests_total");
  });
});

describe("authentication and authorization", () => {
  it("refuses missing and wrong credentials with 401 JSON", async () => {
    for (const path of ["/v2/models/echo", "/v1/requests/00000000-0000-4000-8000-000000000000", "/v2"]) {
      const missing = await call(fx.url, path);
      expect(await errorOf(missing)).toMatchObject({ status: 401, code: "unauthenticated" });
      expect(missing.headers.get("www-authenticate")).toContain("Bearer");
      expect(await errorOf(await call(fx.url, path, { key: "wrong-key" }))).toMatchObject({
        status: 401,
        code: "invalid_api_key",
      });
    }
    const basic = await call(fx.url, "/v2/models/echo", { headers: { authorization: "Basic YTpi" } });
    expect(await errorOf(basic)).toMatchObject({ status: 401, code: "unauthenticated" });
    const infer = await call(fx.url, "/v2/models/echo/infer", { body: { inputs: [] } });
    expect(infer.status).toBe(401);
  });

  it("accepts Bearer and X-API-Key", async () => {
    expect((await call(fx.url, "/v2/models/echo", { key: KEYS.acme })).status).toBe(200);
    const res = await call(fx.url, "/v2/models/echo", { headers: { "x-api-key": KEYS.acme } });
    expect(res.status).toBe(200);
  });

  it("accepts a JWT carrying the tenant, and refuses a forged or expired one", async () => {
    const sign = (secret: string, claims: Record<string, unknown> = { tenant: "acme" }, exp = "5m") =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: "HS256" })
        .setIssuer("https://issuer.example.com")
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(new TextEncoder().encode(secret));
    expect((await call(fx.url, "/v2/models/echo", { key: await sign(JWT_SECRET) })).status).toBe(200);
    const forged = await call(fx.url, "/v2/models/echo", { key: await sign(`${JWT_SECRET}x`) });
    expect(await errorOf(forged)).toMatchObject({ status: 401, code: "invalid_token" });
    const expired = await call(fx.url, "/v2/models/echo", {
      key: await sign(JWT_SECRET, { tenant: "acme" }, "-1m"),
    });
    expect(await errorOf(expired)).toMatchObject({ status: 401, code: "invalid_token" });
    const noTenant = await call(fx.url, "/v2/models/echo", { key: await sign(JWT_SECRET, { sub: "x" }) });
    expect(await errorOf(noTenant)).toMatchObject({ status: 401, code: "invalid_token" });
  });

  it("answers 404 for an unknown model and 403 for a model the tenant may not call", async () => {
    expect(await errorOf(await call(fx.url, "/v2/models/nope", { key: KEYS.acme }))).toMatchObject({
      status: 404,
      code: "model_not_found",
    });
    const body = { inputs: [{ name: "text", datatype: "BYTES", shape: [1], data: ["hi"] }] };
    expect(
      await errorOf(await call(fx.url, "/v2/models/nope/infer", { key: KEYS.acme, body })),
    ).toMatchObject({
      status: 404,
      code: "model_not_found",
    });
    expect(
      await errorOf(await call(fx.url, "/v2/models/text/infer", { key: KEYS.limited, body })),
    ).toMatchObject({
      status: 403,
      code: "model_not_allowed",
    });
    expect(await errorOf(await call(fx.url, "/v2/models/text", { key: KEYS.limited }))).toMatchObject({
      status: 403,
      code: "model_not_allowed",
    });
    expect(await errorOf(await call(fx.url, "/v3/whatever", { key: KEYS.acme }))).toMatchObject({
      status: 404,
      code: "route_not_found",
    });
  });
});

describe("model metadata and readiness", () => {
  it("describes models and pipelines with their API-level inputs", async () => {
    const echo = (await (await call(fx.url, "/v2/models/echo", { key: KEYS.acme })).json()) as Record<
      string,
      unknown
    >;
    expect(echo).toMatchObject({
      name: "echo",
      platform: "onnxruntime_onnx",
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 3] }],
    });
    const ocr = (await (await call(fx.url, "/v2/models/ocr", { key: KEYS.acme })).json()) as Record<
      string,
      unknown
    >;
    // `inputs` is the variant a generic client can build (numbers); the PNG variant is listed too.
    expect(ocr).toMatchObject({
      versions: ["1"],
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3, 48, -1] }],
      outputs: [{ name: "text" }, { name: "confidence" }],
      parameters: {
        input_variants: [
          { id: "tensor", tensors: [{ name: "x" }] },
          { id: "image", tensors: [{ name: "image", datatype: "BYTES", contentEncoding: "base64" }] },
        ],
      },
    });
    const pipeline = await (await call(fx.url, "/v2/models/read-line", { key: KEYS.acme })).json();
    expect(pipeline).toMatchObject({
      platform: "turnpike_pipeline",
      inputs: [{ name: "image", datatype: "BYTES", shape: [-1] }],
      parameters: { steps: ["processor:image-to-tensor", "ocr"] },
    });
  });

  it("is ready when the queues exist, 503 otherwise", async () => {
    const ready = await call(fx.url, "/v2/models/echo/ready", { key: KEYS.acme });
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ name: "echo", ready: true });
    expect((await call(fx.url, "/v2/models/read-line/ready", { key: KEYS.acme })).status).toBe(200);
    expect(await errorOf(await call(fx.url, "/v2/models/unqueued/ready", { key: KEYS.acme }))).toMatchObject({
      status: 503,
      code: "model_not_ready",
    });
  });
});

describe("pipelines this runtime cannot run", () => {
  it("are refused with 422 target_not_runnable and the reason, before anything is reserved", async () => {
    const reason =
      "pipeline dag cannot run in this runtime: step rec reads request, not step decode (DAG steps " +
      "are not run yet; every step must consume the one before it)";
    const before = await fx.quota.usage("acme");
    const infer = await call(fx.url, "/v2/models/dag/infer", {
      method: "POST",
      key: KEYS.acme,
      body: { inputs: [{ name: "image", datatype: "BYTES", shape: [1], data: ["x"] }] },
    });
    expect(await errorOf(infer)).toMatchObject({ status: 422, code: "target_not_runnable", message: reason });
    const ready = await call(fx.url, "/v2/models/dag/ready", { key: KEYS.acme });
    expect(await errorOf(ready)).toMatchObject({ status: 422, code: "target_not_runnable", message: reason });
    expect(await fx.quota.usage("acme")).toEqual(before);
  });
});

describe("CORS", () => {
  it("echoes an allowed origin, never another one, never *", async () => {
    const allowed = await call(fx.url, "/v2/models/echo", {
      key: KEYS.acme,
      headers: { origin: "https://app.example.com" },
    });
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example.com");
    expect(allowed.headers.get("access-control-expose-headers")).toContain("location");
    const denied = await call(fx.url, "/v2/models/echo", {
      key: KEYS.acme,
      headers: { origin: "https://evil.example" },
    });
    expect(denied.headers.get("access-control-allow-origin")).toBeNull();

    const preflight = await fetch(`${fx.url}/v2/models/echo/infer`, {
      method: "OPTIONS",
      headers: {
        origin: "http://localhost:3000",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization, content-type, idempotency-key",
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get("access-control-allow-origin")).toBe("http://localhost:3000");
    expect(preflight.headers.get("access-control-allow-headers")).toContain("idempotency-key");
    const evil = await fetch(`${fx.url}/v2/models/echo/infer`, {
      method: "OPTIONS",
      headers: { origin: "https://evil.example", "access-control-request-method": "POST" },
    });
    expect(evil.headers.get("access-control-allow-origin")).toBeNull();
  });

  it("trusts a resolved API key for TURNPIKE_API_KEY_CACHE_MS; an unknown one is asked for every time", async () => {
    // "keyed" has no TenantQuota in the config: a key that resolves gets 403, one that does not 401.
    const key = "cached-key-0123456789";
    const cached = await fx.another({ TURNPIKE_API_KEY_CACHE_MS: "600000" });
    const uncached = await fx.another({ TURNPIKE_API_KEY_CACHE_MS: "0" });
    const codeOn = async (url: string) => (await errorOf(await call(url, "/v2/models/echo", { key }))).code;
    expect(await codeOn(cached.url)).toBe("invalid_api_key");
    await fx.quota.writeTenant("keyed", {}, [hashApiKey(key)]);
    expect(await codeOn(cached.url)).toBe("tenant_unknown");
    expect(await codeOn(uncached.url)).toBe("tenant_unknown");
    await fx.quota.removeTenant("keyed");
    expect(await codeOn(cached.url)).toBe("tenant_unknown");
    expect(await codeOn(uncached.url)).toBe("invalid_api_key");
  });

  it("sends no CORS headers at all when no origin is configured", async () => {
    const plain = await fx.another({});
    const res = await call(plain.url, "/v2/health/live", { headers: { origin: "https://app.example.com" } });
    expect(res.headers.get("access-control-allow-origin")).toBeNull();
  });
});

describe("request-rate limits", () => {
  it("limits requests per tenant with 429 rate_limited and Retry-After", async () => {
    const limitedGateway = await fx.another({ TURNPIKE_RATE_LIMIT_PER_TENANT: "3" });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++)
      statuses.push((await call(limitedGateway.url, "/v2/models/echo", { key: KEYS.other })).status);
    expect(statuses).toEqual([200, 200, 200, 429]);
    const refused = await call(limitedGateway.url, "/v2/models/echo", { key: KEYS.other });
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(refused.headers.get("x-ratelimit-limit")).toBe("3");
    expect(await errorOf(refused)).toMatchObject({ status: 429, code: "rate_limited" });
    // Another tenant from the same IP is not limited by this tenant's count (it has no TenantQuota
    // in the config, so it gets 403 rather than 429).
    await fx.quota.writeTenant("spare", {}, [hashApiKey("spare-key-0123456789")]);
    const spare = await call(limitedGateway.url, "/v2/models/echo", { key: "spare-key-0123456789" });
    expect(await errorOf(spare)).toMatchObject({ status: 403, code: "tenant_unknown" });
  });

  it("refuses an over-limit request with 429 before anything about its body, which arrives meanwhile", async () => {
    const limitedGateway = await fx.another({ TURNPIKE_RATE_LIMIT_PER_TENANT: "2" });
    // A tenant of its own, so no other test's calls count against its limit.
    const key = "burst-key-0123456789";
    await fx.quota.writeTenant("burst", {}, [hashApiKey(key)]);
    const infer = (body: unknown, headers: Record<string, string> = {}) =>
      call(limitedGateway.url, "/v2/models/echo/infer", { key, body, headers });
    const good = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] };
    // The first call resolves the key (limits checked one after the other), the second is checked
    // while its body arrives; both are inside the limit and answered as usual.
    expect((await call(limitedGateway.url, "/v2/models/echo", { key })).status).not.toBe(429);
    expect(await errorOf(await infer("{nope"))).toMatchObject({ status: 400 });
    // Over the limit: 429 whatever the body (broken JSON, too large, a media type refused, valid).
    const refusals = [
      await infer("{nope"),
      await infer("x".repeat(70 * 1024)),
      await infer("a=1", { "content-type": "application/x-www-form-urlencoded" }),
      await infer(good),
    ];
    for (const refused of refusals) {
      expect(await errorOf(refused)).toMatchObject({ status: 429, code: "rate_limited" });
      expect(refused.headers.get("x-ratelimit-limit")).toBe("2");
    }
  });

  it("counts a small infer body's limits with its reservation, and an over-limit one holds nothing", async () => {
    const limitedGateway = await fx.another({ TURNPIKE_RATE_LIMIT_PER_TENANT: "8" });
    const key = KEYS.limited;
    const good = { inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] };
    // Resolves the key, so the infers below are from a known key with a small body.
    expect((await call(limitedGateway.url, "/v2/models/echo", { key })).status).not.toBe(429);
    const first = await call(limitedGateway.url, "/v2/models/echo/infer", {
      key,
      body: good,
      headers: { prefer: "respond-async", "idempotency-key": "within-the-limit-1" },
    });
    expect(first.status).toBe(202);
    const inFlightBefore = (await fx.quota.usage("limited")).inFlight;
    const statuses: number[] = [];
    for (let n = 0; n < 10; n++) {
      const answer = await call(limitedGateway.url, "/v2/models/echo/infer", {
        key,
        body: good,
        headers: { prefer: "respond-async" },
      });
      statuses.push(answer.status);
      if (answer.status === 429) {
        expect(await errorOf(answer)).toMatchObject({ status: 429, code: "rate_limited" });
      }
    }
    const accepted = statuses.filter((s) => s === 202).length;
    // Earlier tests of this file count against the same tenant: at least one passes, then only 429.
    expect(accepted).toBeGreaterThan(0);
    expect(statuses).toEqual([...Array(accepted).fill(202), ...Array(10 - accepted).fill(429)]);
    // Each accepted request holds its reservation; each refused one released what it reserved.
    expect((await fx.quota.usage("limited")).inFlight).toBe(inFlightBefore + accepted);
    // With an Idempotency-Key the limits go first, alone: over the limit, a retry of an accepted
    // request is refused like any other, and a new key is not claimed.
    for (const idempotencyKey of ["within-the-limit-1", "over-the-limit-1"]) {
      const keyed = await call(limitedGateway.url, "/v2/models/echo/infer", {
        key,
        body: good,
        headers: { prefer: "respond-async", "idempotency-key": idempotencyKey },
      });
      expect(await errorOf(keyed)).toMatchObject({ status: 429, code: "rate_limited" });
    }
    expect(await fx.redis.exists(tenantKeys(fx.prefix, "limited").idempotency("over-the-limit-1"))).toBe(0);
  });

  it("counts each large infer body's limits once, and at the limit refuses it before reading it", async () => {
    const limitedGateway = await fx.another({ TURNPIKE_RATE_LIMIT_PER_TENANT: "4" });
    // A window of its own: earlier tests count against acme too.
    const counters = () => fx.redis.keys(`tp:${fx.prefix}:ratelimit:*tenant:acme`);
    for (const key of await counters()) await fx.redis.del(key);
    // Resolves the key and counts it once (3 requests left in the window).
    expect((await call(limitedGateway.url, "/v2/models/echo", { key: KEYS.acme })).status).toBe(200);
    // Over DEFERRED_LIMITS_MAX_BYTES: the limits go first, before the body is read.
    const large = JSON.stringify({
      inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }],
    });
    const body = large + " ".repeat(20 * 1024);
    const inFlightBefore = (await fx.quota.usage("acme")).inFlight;
    const statuses: number[] = [];
    for (let n = 0; n < 5; n++) {
      const answer = await call(limitedGateway.url, "/v2/models/echo/infer", {
        key: KEYS.acme,
        body,
        headers: { prefer: "respond-async", "content-type": "application/json" },
      });
      statuses.push(answer.status);
      if (answer.status === 429) expect(await errorOf(answer)).toMatchObject({ code: "rate_limited" });
    }
    expect(statuses).toEqual([202, 202, 202, 429, 429]);
    expect((await fx.quota.usage("acme")).inFlight).toBe(inFlightBefore + 3);
    const [counter, ...others] = await counters();
    expect(others).toEqual([]);
    expect(Number(await fx.redis.get(counter!))).toBe(6);
  });
});

// Who may call what, against real gateway processes: a table over every route (SSE included) and
// every kind of credential (none, malformed, unknown key, forged/expired/unsigned JWT, a key in
// the query string, another tenant's valid key); the CORS allow-list; and the per-IP and
// per-tenant request-rate limits, counted exactly, including that X-Forwarded-For cannot be used
// to dodge the per-IP limit unless the gateway is configured to trust a proxy.
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installation, type Installation, type Tenant } from "../reliability/helpers/installation.js";
import { writeRows, type SecurityRow } from "../reliability/helpers/report-file.js";
import { findSecrets, postgresDump, redisDump } from "../reliability/helpers/secrets.js";

const JWT_SECRET = "reliability-suite-secret-0123456789abcdef";
const ISSUER = "https://issuer.example.com";
const ORIGINS = "https://app.example.com,http://localhost:3000";
let inst: Installation | undefined;
let open = ""; // JWT + CORS, no rate limits
let strict = ""; // per-IP limit, X-Forwarded-For not trusted
let proxied = ""; // per-IP and per-tenant limits behind a trusted proxy
let acme: Tenant;
let other: Tenant;
let acmeRequest = "";
const rows: SecurityRow[] = [];

beforeAll(async () => {
  inst = await installation({
    label: "sec-access",
    tenants: ["acme", "other", "third", "fourth"].map((name) => ({
      name,
      limits: { tokensPerDay: 1_000_000 },
    })),
  });
  [acme, other] = inst.tenants as [Tenant, Tenant];
  // Debug logging: every refusal is logged too, so the secret scan below sees the most output.
  const common = {
    TURNPIKE_SYNC_TIMEOUT_MS: "20",
    TURNPIKE_MAX_SYNC_TIMEOUT_MS: "50",
    TURNPIKE_LOG_LEVEL: "debug",
  };
  [open, strict, proxied] = await Promise.all([
    inst.spawn("gateway", "open", {
      ...common,
      TURNPIKE_JWT_SECRET: JWT_SECRET,
      TURNPIKE_JWT_ISSUER: ISSUER,
      TURNPIKE_CORS_ORIGINS: ORIGINS,
    }).ready,
    inst.spawn("gateway", "strict", { ...common, TURNPIKE_RATE_LIMIT_PER_IP: "30" }).ready,
    inst.spawn("gateway", "proxied", {
      ...common,
      TURNPIKE_TRUST_PROXY: "true",
      TURNPIKE_RATE_LIMIT_PER_IP: "40",
      TURNPIKE_RATE_LIMIT_PER_TENANT: "15",
    }).ready,
  ]);
  const res = await fetch(`${open}/v2/models/echo/infer`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${acme.apiKey}`,
      "content-type": "application/json",
      prefer: "respond-async",
    },
    body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }),
  });
  expect(res.status).toBe(202);
  acmeRequest = ((await res.json()) as { id: string }).id;
}, 120_000);

afterAll(async () => {
  writeRows("access", rows);
  await inst?.cleanup();
}, 60_000);

const sign = (claims: Record<string, unknown>, secret = JWT_SECRET, expires = "5m", alg = "HS256") =>
  new SignJWT(claims)
    .setProtectedHeader({ alg })
    .setIssuer(ISSUER)
    .setIssuedAt()
    .setExpirationTime(expires)
    .sign(new TextEncoder().encode(secret));

const ROUTES = () => [
  { name: "GET /v2", method: "GET", path: "/v2" },
  { name: "GET /v2/models/{name}", method: "GET", path: "/v2/models/echo" },
  { name: "GET /v2/models/{name}/ready", method: "GET", path: "/v2/models/echo/ready" },
  { name: "POST /v2/models/{name}/infer", method: "POST", path: "/v2/models/echo/infer" },
  { name: "GET /v1/requests/{id}", method: "GET", path: `/v1/requests/${acmeRequest}` },
  { name: "GET /v1/requests/{id}/events (SSE)", method: "GET", path: `/v1/requests/${acmeRequest}/events` },
];
const PUBLIC = ["/v2/health/live", "/v2/health/ready", "/metrics"];

async function call(base: string, method: string, path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: { ...headers, ...(method === "POST" ? { "content-type": "application/json" } : {}) },
    body:
      method === "POST"
        ? JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] })
        : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const type = res.headers.get("content-type") ?? "";
  const body = type.includes("json")
    ? ((await res.json()) as { error?: string | { code?: string }; code?: string })
    : undefined;
  if (!body) await res.body?.cancel();
  // /v2 routes answer the OIP shape {error: "message", code}; others {error: {code, message}}.
  const code = typeof body?.error === "string" ? body.code : body?.error?.code;
  return { status: res.status, code, headers: res.headers };
}

describe("every route enforces authentication as documented", () => {
  it("refuses every credential that is not a valid key or token, on every route", async () => {
    const credentials: [string, () => Promise<Record<string, string>>, string, number][] = [
      ["no credentials", async () => ({}), "unauthenticated", 401],
      ["empty bearer", async () => ({ authorization: "Bearer " }), "unauthenticated", 401],
      [
        "Basic auth",
        async () => ({ authorization: `Basic ${Buffer.from(`acme:${acme.apiKey}`).toString("base64")}` }),
        "unauthenticated",
        401,
      ],
      ["unknown key", async () => ({ authorization: "Bearer tp_live_not-a-key" }), "invalid_api_key", 401],
      ["unknown X-API-Key", async () => ({ "x-api-key": "tp_live_not-a-key" }), "invalid_api_key", 401],
      [
        "a key with one character changed",
        async () => ({ authorization: `Bearer ${acme.apiKey.slice(0, -1)}x` }),
        "invalid_api_key",
        401,
      ],
      [
        "forged JWT",
        async () => ({ authorization: `Bearer ${await sign({ tenant: "acme" }, `${JWT_SECRET}x`)}` }),
        "invalid_token",
        401,
      ],
      [
        "expired JWT",
        async () => ({ authorization: `Bearer ${await sign({ tenant: "acme" }, JWT_SECRET, "-1m")}` }),
        "invalid_token",
        401,
      ],
      [
        "JWT without a tenant",
        async () => ({ authorization: `Bearer ${await sign({ sub: "x" })}` }),
        "invalid_token",
        401,
      ],
      [
        "unsigned JWT (alg none)",
        async () => ({
          authorization: `Bearer ${Buffer.from('{"alg":"none"}').toString("base64url")}.${Buffer.from(JSON.stringify({ tenant: "acme", iss: ISSUER })).toString("base64url")}.`,
        }),
        "invalid_token",
        401,
      ],
    ];
    const failures: string[] = [];
    let cases = 0;
    for (const route of ROUTES()) {
      for (const [label, headers, code, status] of credentials) {
        cases++;
        const answer = await call(open, route.method, route.path, await headers());
        if (answer.status !== status || answer.code !== code)
          failures.push(`${route.name} with ${label}: ${answer.status} ${answer.code}`);
        if (status === 401 && !answer.headers.get("www-authenticate")?.startsWith("Bearer"))
          failures.push(`${route.name} with ${label}: no WWW-Authenticate`);
      }
      // A key in the query string is not a credential.
      cases++;
      const sep = route.path.includes("?") ? "&" : "?";
      const query = await call(open, route.method, `${route.path}${sep}api_key=${acme.apiKey}`);
      if (query.status !== 401) failures.push(`${route.name} with ?api_key=: ${query.status}`);
    }
    for (const path of PUBLIC) {
      cases++;
      const answer = await call(open, "GET", path);
      if (answer.status !== 200) failures.push(`${path} without credentials: ${answer.status}`);
    }
    rows.push({
      kind: "security",
      check: "authentication on every route (SSE included)",
      cases,
      violations: failures.length,
      notes: `${ROUTES().length} authenticated routes x ${credentials.length + 1} bad credentials; ${PUBLIC.length} public endpoints`,
    });
    expect(failures).toEqual([]);
  });

  it("lets valid keys and tokens in, and scopes requests to their tenant", async () => {
    const failures: string[] = [];
    const token = await sign({ tenant: "acme" });
    for (const route of ROUTES()) {
      for (const [label, headers] of [
        ["key", { authorization: `Bearer ${acme.apiKey}` }],
        ["X-API-Key", { "x-api-key": acme.apiKey }],
        ["JWT", { authorization: `Bearer ${token}` }],
      ] as const) {
        const answer = await call(open, route.method, route.path, headers);
        if (answer.status === 401 || answer.status === 403)
          failures.push(`${route.name} with acme's ${label}: ${answer.status} ${answer.code}`);
      }
      // Another tenant's valid key: authenticated, but acme's request does not exist for it.
      if (route.path.startsWith("/v1/requests/")) {
        const answer = await call(open, route.method, route.path, {
          authorization: `Bearer ${other.apiKey}`,
        });
        if (answer.status !== 404 || answer.code !== "request_not_found")
          failures.push(`${route.name} with other's key: ${answer.status} ${answer.code}`);
      }
    }
    rows.push({
      kind: "security",
      check: "valid credentials accepted; other tenants' requests invisible",
      cases: ROUTES().length * 3 + 2,
      violations: failures.length,
      notes: "API key (Bearer and X-API-Key) and HS256 JWT",
    });
    expect(failures).toEqual([]);
  });
});

describe("the CORS allow-list holds", () => {
  it("echoes only listed origins, exactly", async () => {
    const cases: [string, boolean][] = [
      ["https://app.example.com", true],
      ["http://localhost:3000", true],
      ["https://evil.example", false],
      ["https://app.example.com.evil.example", false],
      ["https://evil.example/https://app.example.com", false],
      ["http://app.example.com", false],
      ["HTTPS://APP.EXAMPLE.COM", false],
      ["https://app.example.com:444", false],
      ["http://localhost:3001", false],
      ["null", false],
      ["*", false],
    ];
    const failures: string[] = [];
    for (const [origin, allowed] of cases) {
      for (const preflight of [false, true]) {
        const res = await fetch(`${open}/v2/models/echo/infer`, {
          method: preflight ? "OPTIONS" : "GET",
          headers: preflight
            ? {
                origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
              }
            : { origin, authorization: `Bearer ${acme.apiKey}` },
        });
        await res.body?.cancel();
        const echoed = res.headers.get("access-control-allow-origin");
        if (allowed ? echoed !== origin : echoed !== null)
          failures.push(`${preflight ? "preflight" : "request"} from ${origin}: allow-origin ${echoed}`);
        if (res.headers.get("access-control-allow-credentials") === "true")
          failures.push(`${origin}: allows credentials`);
      }
    }
    rows.push({
      kind: "security",
      check: "CORS allow-list (requests and preflights)",
      cases: cases.length * 2,
      violations: failures.length,
      notes: `allow-list ${ORIGINS}; lookalike, scheme, port, case, null and * origins refused`,
    });
    expect(failures).toEqual([]);
  });
});

describe("request-rate limits hold", () => {
  const statusCounts = (statuses: number[]) =>
    statuses.reduce<Record<number, number>>((m, s) => ({ ...m, [s]: (m[s] ?? 0) + 1 }), {});

  it("per client IP, before authentication, and X-Forwarded-For is ignored unless a proxy is trusted", async () => {
    // 50 unauthenticated guesses from one IP that rotates X-Forwarded-For: 30 are answered 401,
    // then the IP is cut off (429) - key guessing is rate limited.
    const statuses: number[] = [];
    const codes = new Set<string>();
    for (let n = 0; n < 50; n++) {
      const answer = await call(strict, "GET", "/v2", {
        authorization: `Bearer guess-${n}`,
        "x-forwarded-for": `10.9.0.${n}`,
      });
      statuses.push(answer.status);
      if (answer.status === 429) {
        codes.add(String(answer.code));
        if (!answer.headers.get("retry-after")) codes.add("missing retry-after");
      }
    }
    const health = await call(strict, "GET", "/v2/health/live");
    const counts = statusCounts(statuses);
    rows.push({
      kind: "security",
      check: "per-IP rate limit (30/min, untrusted X-Forwarded-For rotated)",
      cases: 50,
      violations: Math.abs((counts[401] ?? 0) - 30),
      notes: `answers ${JSON.stringify(counts)}; health stays open: ${health.status}`,
    });
    expect(counts).toEqual({ 401: 30, 429: 20 });
    expect([...codes]).toEqual(["rate_limited"]);
    expect(health.status).toBe(200);
  });

  it("per tenant across IPs, and per IP across tenants, behind a trusted proxy", async () => {
    // One tenant from 30 different client IPs: 15 pass, then the tenant is limited.
    const perTenant: number[] = [];
    for (let n = 0; n < 30; n++) {
      perTenant.push(
        (
          await call(proxied, "GET", "/v2", {
            authorization: `Bearer ${acme.apiKey}`,
            "x-forwarded-for": `10.1.0.${n}`,
          })
        ).status,
      );
    }
    // One client IP with three other tenants' keys (at most 14 each before the IP limit): 40 pass.
    const perIp: number[] = [];
    const keys = inst!.tenants.filter((t) => t !== acme).map((t) => t.apiKey);
    for (let n = 0; n < 60; n++) {
      const answer = await call(proxied, "GET", "/v2", {
        authorization: `Bearer ${keys[n % keys.length]}`,
        "x-forwarded-for": "10.2.0.1",
      });
      perIp.push(answer.status);
    }
    const tenantCounts = statusCounts(perTenant);
    const ipCounts = statusCounts(perIp);
    rows.push({
      kind: "security",
      check: "per-tenant rate limit (15/min) across IPs",
      cases: 30,
      violations: Math.abs((tenantCounts[200] ?? 0) - 15),
      notes: `answers ${JSON.stringify(tenantCounts)}`,
    });
    rows.push({
      kind: "security",
      check: "per-IP rate limit (40/min) across tenants",
      cases: 60,
      violations: Math.abs((ipCounts[200] ?? 0) - 40),
      notes: `answers ${JSON.stringify(ipCounts)}`,
    });
    expect(tenantCounts).toEqual({ 200: 15, 429: 15 });
    expect(ipCounts[200]).toBe(40);
    expect(ipCounts[429]).toBe(20);
  });
});

describe("no plaintext API key is kept or printed", () => {
  it("after every request above: not in Redis, PostgreSQL or the gateways' debug logs", async () => {
    const i = inst!;
    const sources = {
      redis: await redisDump(i.redis, i.prefix),
      postgres: await postgresDump(i.pool, i.schema),
      "gateway logs (debug)": i.processes.map((p) => p.output()),
    };
    const leaks = findSecrets(
      i.tenants.map((t) => t.apiKey),
      sources,
    );
    const lines = Object.values(sources).reduce(
      (n, texts) => n + texts.reduce((m, t) => m + t.split("\n").length, 0),
      0,
    );
    rows.push({
      kind: "security",
      check:
        "no plaintext API key in Redis, PostgreSQL or debug logs (gateways under the auth, CORS and rate-limit tests)",
      cases: lines,
      violations: leaks.length,
      notes: `${i.tenants.length} keys looked for in ${lines} Redis entries, rows and log lines`,
    });
    expect(leaks).toEqual([]);
  });
});

// Hostile HTTP input, property-based: more than 10,000 generated malformed requests (bodies,
// headers, tensor shapes and datatypes, huge payloads, odd unicode, wrong content types, bad
// Idempotency-Keys, bad credentials, paths and methods, broken HTTP framing) sent over raw TCP to a
// real gateway process backed by a real worker and collector. Properties: no 5xx, no hang, no
// crash, and every refusal is JSON whose error code is in the documented table (errors.ts) with
// its documented status.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../runtime/gateway/errors.js";
import { installation, type Installation } from "../reliability/helpers/installation.js";
import type { RoleProcess } from "../reliability/helpers/processes.js";
import { writeRows, type HostileRow } from "../reliability/helpers/report-file.js";
import { hostileRequests } from "./helpers/hostile-requests.js";
import { rawRequest, type RawRequest, type RawResponse } from "./helpers/raw-http.js";

const BATCH = 10; // requests sent concurrently per property run
let inst: Installation | undefined;
let gateway: RoleProcess;
let port = 0;
let key = "";
const rows: HostileRow[] = [];

beforeAll(async () => {
  inst = await installation({
    label: "sec-fuzz",
    ocr: true,
    tenants: [{ name: "fuzz", limits: { tokensPerDay: 1_000_000_000 } }],
  });
  key = inst.tenants[0]!.apiKey;
  gateway = inst.spawn("gateway", "gateway", {
    // Valid requests must not wait for results: answer 202 at once.
    TURNPIKE_SYNC_TIMEOUT_MS: "20",
    TURNPIKE_MAX_SYNC_TIMEOUT_MS: "50",
  });
  const collector = inst.spawn("collector", "collector");
  const worker = inst.spawn("worker", "echo");
  const [url] = await Promise.all([gateway.ready, collector.ready, worker.ready]);
  port = Number(new URL(url).port);
}, 120_000);

afterAll(async () => {
  writeRows("hostile-http", rows);
  await inst?.cleanup();
}, 120_000);

interface FamilyStats {
  cases: number;
  serverErrors: number;
  undocumented: number;
  hangs: number;
  statuses: Map<number, number>;
  codes: Set<string>;
}

/** The stable code of an error body: OIP `{error: "message", code}` on /v2, `{error: {code}}` elsewhere. */
function errorCodeOf(body: unknown): unknown {
  const b = body as { error?: string | { code?: unknown }; code?: unknown } | null;
  return typeof b?.error === "string" ? b.code : b?.error?.code;
}

/** What is wrong with one answer (empty: nothing). */
function problemsOf(res: RawResponse, request: RawRequest, framing: boolean): string[] {
  if (res.hung) return ["no answer within 10 s"];
  if (res.status === 0) return framing ? [] : ["connection closed without an answer"];
  if (res.status >= 500) return [`${res.status} ${res.body.slice(0, 200)}`];
  if (res.status < 400 || request.method === "HEAD") return [];
  let code: unknown;
  try {
    code = errorCodeOf(JSON.parse(res.body));
  } catch {
    return [`${res.status} with a body that is not JSON: ${res.body.slice(0, 120)}`];
  }
  if (typeof code !== "string" || !(code in ERROR_STATUS))
    return [`${res.status} with undocumented code ${String(code)}: ${res.body.slice(0, 160)}`];
  if (ERROR_STATUS[code as keyof typeof ERROR_STATUS] !== res.status)
    return [`code ${code} with status ${res.status}`];
  return [];
}

/** Reports a generated request by a short summary (fast-check would print multi-megabyte bodies). */
function summarized(request: RawRequest): RawRequest {
  const size = request.body === undefined ? 0 : Buffer.byteLength(request.body);
  return Object.assign(request, {
    [fc.toStringMethod]: () =>
      `${request.method} ${request.path.slice(0, 120)} headers=${JSON.stringify(request.headers.map(([n, v]) => [n, String(v).replaceAll(key, "<API KEY>").slice(0, 60)]))} body=${size} bytes: ${String(request.body ?? "").slice(0, 120)}`,
  });
}

/** Runs one family: `runs` batches of BATCH generated requests, all checked; records its row. */
async function family(name: string, arbitrary: fc.Arbitrary<RawRequest>, runs: number, framing = false) {
  const stats: FamilyStats = {
    cases: 0,
    serverErrors: 0,
    undocumented: 0,
    hangs: 0,
    statuses: new Map(),
    codes: new Set(),
  };
  let failure: unknown;
  try {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbitrary.map(summarized), { minLength: BATCH, maxLength: BATCH }),
        async (batch) => {
          const answers = await Promise.all(batch.map((r) => rawRequest(port, r)));
          const problems: string[] = [];
          answers.forEach((res, i) => {
            stats.cases++;
            stats.statuses.set(res.status, (stats.statuses.get(res.status) ?? 0) + 1);
            if (res.status >= 500) stats.serverErrors++;
            if (res.hung) stats.hangs++;
            const found = problemsOf(res, batch[i]!, framing);
            if (found.length > 0 && res.status < 500 && !res.hung) stats.undocumented++;
            try {
              stats.codes.add(String(errorCodeOf(JSON.parse(res.body)) ?? res.status));
            } catch {
              stats.codes.add(String(res.status));
            }
            problems.push(...found.map((p) => `${batch[i]!.method} ${batch[i]!.path.slice(0, 80)}: ${p}`));
          });
          if (!gateway.alive()) problems.push("the gateway process died");
          if (problems.length > 0) throw new Error(problems.slice(0, 5).join("\n"));
        },
      ),
      { numRuns: runs, endOnFailure: true, seed: Number(process.env.TURNPIKE_FUZZ_SEED ?? 20_261_128) },
    );
  } catch (error) {
    failure = error;
  }
  const statuses = [...stats.statuses]
    .sort((a, b) => a[0] - b[0])
    .map(([s, n]) => `${s}x${n}`)
    .join(" ");
  rows.push({
    kind: "hostile",
    family: name,
    cases: stats.cases,
    serverErrors: stats.serverErrors,
    crashes: gateway.alive() ? 0 : 1,
    undocumented: stats.undocumented,
    notes: `answers ${statuses}; codes ${[...stats.codes]
      .filter((c) => !/^\d+$/.test(c))
      .sort()
      .join(", ")}`,
  });
  if (failure) throw failure;
  expect(gateway.alive()).toBe(true);
}

const hostile = hostileRequests(() => key);

describe("hostile HTTP requests against a real gateway", () => {
  it("malformed JSON bodies", () => family("malformed JSON bodies", hostile.jsonBodies, 120), 120_000);
  it(
    "bodies that are JSON but not an infer request",
    () => family("OIP structure violations", hostile.oipStructure, 120),
    120_000,
  );
  it(
    "tensor names, shapes, datatypes and data",
    () => family("tensor shapes, datatypes and data", hostile.tensors, 150),
    120_000,
  );
  it("huge payloads", () => family("huge payloads and shapes", hostile.huge, 8), 180_000);
  it("odd unicode", () => family("odd unicode", hostile.unicode, 120), 120_000);
  it("wrong content types", () => family("wrong content types", hostile.contentTypes, 100), 120_000);
  it("bad Idempotency-Keys", () => family("bad Idempotency-Keys", hostile.idempotencyKeys, 100), 120_000);
  it("bad credentials", () => family("bad auth headers", hostile.credentials, 100), 120_000);
  it("paths, methods and queries", () => family("paths, methods, request ids", hostile.paths, 120), 120_000);
  it(
    "broken HTTP framing",
    () => family("HTTP framing (answered by Node's parser)", hostile.framing, 80, true),
    120_000,
  );

  it("sent at least 10,000 requests and the gateway is still ready", async () => {
    expect(rows.reduce((n, r) => n + r.cases, 0)).toBeGreaterThanOrEqual(10_000);
    expect(gateway.alive()).toBe(true);
    expect(
      (await rawRequest(port, { method: "GET", path: "/v2/health/ready", headers: [], contentLength: null }))
        .status,
    ).toBe(200);
    // Nothing was logged as an unexpected failure.
    expect(
      gateway
        .output()
        .split("\n")
        .filter((l) => /"level":(50|60)/.test(l)),
    ).toEqual([]);
  });
});

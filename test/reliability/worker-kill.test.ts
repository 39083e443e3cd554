// Fault: kill -9 workers mid-batch while ~1,000 requests are in flight. Two echo workers consume
// a queue holding 1,000 accepted requests (plus sync and SSE clients waiting); one is SIGKILLed
// while it holds a batch, the other carries on, and a restarted one joins. The real PP-OCRv4 worker
// is SIGKILLed mid-inference too and its restart finishes the OCR requests with the exact text.
import { describe, expect, it } from "vitest";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { ECHO_TOKENS } from "./helpers/installation.js";
import { faultSuite } from "./helpers/fault-suite.js";
import { writeRows } from "./helpers/report-file.js";
import {
  expectClean,
  faultRow,
  inFlightOf,
  ocrLine,
  ocrTexts,
  recordCount,
  submitOcr,
  until,
} from "./helpers/scenario.js";
import { findSecrets, postgresDump, redisDump } from "./helpers/secrets.js";
import { Traffic, type SseOutcome } from "./helpers/traffic.js";

const ASYNC = 1_000;
const SYNC = 12;
const SSE = 12;
const OCR = 40;

const suite = faultSuite("worker-kill");
const { rows } = suite;

describe("kill -9 a worker mid-batch", () => {
  it("loses nothing, runs nothing twice, charges every token once", async () => {
    const i = await suite.install({
      label: "rel-worker",
      ocr: true,
      // Batches that never fill (prefetch 8 < 16) wait their 60 ms: each echo worker holds a batch
      // nearly all the time and drains ~130 requests/s, so the kill lands mid-batch, mid-stream.
      echoBatching: { maxBatchSize: 16, maxDelayMs: 60 },
      tenants: [
        { name: "bulk", limits: { tokensPerDay: 10_000_000, concurrentRequests: 100_000 } },
        // 150 requests would reserve 750 tokens: the day limit refuses some, and must hold.
        { name: "capped", limits: { tokensPerDay: 400 } },
      ],
    });
    const [bulk, capped] = i.tenants as [(typeof i.tenants)[0], (typeof i.tenants)[0]];
    const collector = i.supervise("collector", "collector");
    const gateway = i.supervise("gateway", "gateway");
    const [gatewayUrl] = await Promise.all([gateway.current.ready, collector.current.ready]);
    const gateways = () => (gateway.current.alive() ? [gatewayUrl] : []);
    const traffic = new Traffic(`${i.prefix}-w`, { gateways });
    const sampler = new QuotaSampler(i);

    // 1,000 accepted async requests wait in the queue before any echo worker runs, with sync
    // clients blocked on their answers and SSE clients following some of them.
    await traffic.burst({
      tenants: [bulk, bulk, bulk, bulk, bulk, bulk, capped],
      concurrency: 48,
      count: ASYNC,
      resendEvery: 10,
    });
    const syncDone = traffic.burst({ tenants: [bulk], concurrency: SYNC, count: SYNC, mode: "sync" });
    const followed = traffic.accepted().slice(0, SSE);
    const sseDone: Promise<SseOutcome[]> = Promise.all(
      followed.map((r) => traffic.follow([...r.ids][0]!, r.tenant === "bulk" ? bulk : capped)),
    );
    const ocrIds = await Promise.all(
      Array.from({ length: OCR }, (_, n) => submitOcr(() => gatewayUrl, bulk, n)),
    );
    const acceptedBefore = traffic.accepted().length;
    expect(traffic.requests.filter((r) => r.refusal === "quota_exceeded").length).toBeGreaterThan(0);

    // The OCR worker first: killed while it runs a batch, restarted at once.
    const ocrWorker = i.supervise("worker", "ocr-worker", { TURNPIKE_MODEL: "ocr" });
    const ocrUrl = await ocrWorker.current.ready;
    await until(
      "a batch in the OCR worker",
      async () => (await inFlightOf(ocrUrl)) > 0 && (await recordCount(i, "ocr")) >= 2,
    );
    const heldByOcr = await inFlightOf(ocrUrl);
    await ocrWorker.kill9();
    const ocrRestart = ocrWorker.restart();

    // Two echo workers drain the 1,000; echo-a is killed while it holds a batch, echo-b carries on
    // alone for a moment, then echo-a's replacement joins (as its Deployment would start one).
    const echoA = i.supervise("worker", "echo-a", { TURNPIKE_PREFETCH: "8" });
    const echoB = i.supervise("worker", "echo-b", { TURNPIKE_PREFETCH: "8" });
    const [urlA] = await Promise.all([echoA.current.ready, echoB.current.ready]);
    await until(
      "echo-a holding a batch",
      async () => (await recordCount(i, "echo")) >= 20 && (await inFlightOf(urlA)) >= 4,
    );
    const heldByA = await inFlightOf(urlA);
    const inFlightAtFault = traffic.accepted().length + OCR - (await recordCount(i));
    const faultAt = Date.now();
    await echoA.kill9();
    await new Promise((r) => setTimeout(r, 500));
    await Promise.all([echoA.restart(), ocrRestart]);
    await Promise.all([echoA.current.ready, ocrWorker.current.ready]);
    const backInServiceMs = Date.now() - faultAt;

    const missing = await waitForRecords(i, [...traffic.acceptedIds(), ...ocrIds], 120_000);
    await waitForSettled(i, 30_000);
    const recoveryMs = Date.now() - faultAt;
    await syncDone;
    const sse = await sseDone;
    sampler.stop();
    const result = await audit(i, traffic, sampler);
    const texts = await ocrTexts(i);
    const wrongText = ocrIds.filter((id, n) => texts.get(id) !== ocrLine(n));
    const syncWrong = traffic.requests.filter((r) => r.mode === "sync" && r.result?.seq !== r.seq);
    const sseWrong = sse.filter((s) => s.results !== 1 || s.finalStatus !== "succeeded");
    const byWorker = await i.pool.query<{ worker: string; n: number }>(
      `SELECT steps->0->>'worker' AS worker, count(*)::int AS n FROM "${i.schema}".requests GROUP BY 1 ORDER BY 1`,
    );
    const processedBy = byWorker.rows.map((r) => `${r.worker} ${r.n}`).join(", ");
    rows.push(
      faultRow(
        "kill -9 a worker mid-batch (echo and PP-OCRv4)",
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          reconnect:
            "killed workers restarted by the test (their supervisor); the other echo worker carried on",
          notes:
            `echo-a held ${heldByA} requests and the OCR worker ${heldByOcr} when killed; processed by: ${processedBy}; ` +
            `${OCR} OCR lines all read exactly: ${wrongText.length === 0}; ` +
            `${SYNC} sync clients got their own echo: ${syncWrong.length === 0}; ` +
            `${SSE} SSE clients got exactly one result: ${sseWrong.length === 0}; ` +
            `${traffic.requests.filter((r) => r.refusal === "quota_exceeded").length} requests of the ` +
            `capped tenant refused by its day limit (${acceptedBefore} accepted before the workers started)`,
        },
      ),
    );

    expect(missing).toEqual([]);
    expectClean(result);
    expect(wrongText.map((id) => texts.get(id))).toEqual([]);
    expect(syncWrong.map((r) => r.key)).toEqual([]);
    expect(sseWrong).toEqual([]);
    // Each echo record charged exactly the model's fixed units.
    const charged = await i.pool.query<{ c: number }>(
      `SELECT DISTINCT charged_tokens::float8 AS c FROM "${i.schema}".requests WHERE target = 'echo'`,
    );
    expect(charged.rows.map((r) => r.c)).toEqual([ECHO_TOKENS.charged]);

    // No plaintext API key in Redis, PostgreSQL or anything a process printed.
    const sources = {
      redis: await redisDump(i.redis, i.prefix),
      postgres: await postgresDump(i.pool, i.schema),
      logs: i.processes.map((p) => p.output()),
    };
    const leaks = findSecrets(
      i.tenants.map((t) => t.apiKey),
      sources,
    );
    writeRows("worker-kill-secrets", [
      {
        kind: "security",
        check: "no plaintext API key in Redis, PostgreSQL or the logs of every process (worker-kill run)",
        cases: Object.values(sources).reduce(
          (n, texts) => n + texts.reduce((m, t) => m + t.split("\n").length, 0),
          0,
        ),
        violations: leaks.length,
        notes: `keys of ${i.tenants.length} tenants after ${traffic.requests.length} requests; ${i.processes.length} processes`,
      },
    ]);
    expect(leaks).toEqual([]);
  }, 300_000);
});

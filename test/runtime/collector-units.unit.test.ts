// Pure parts of the collector: settings, message parsing, the charging rule, backoff, batching and
// the probe routes. No services needed.
import { describe, expect, it } from "vitest";
import { backoffMs, retryUntilDone } from "../../runtime/shared/backoff.js";
import { Batcher } from "../../runtime/collector/batcher.js";
import { loadCollectorSettings } from "../../runtime/collector/config.js";
import { buildProbeApp } from "../../runtime/shared/probe-server.js";
import { parseResultMessage } from "../../runtime/collector/result-message.js";
import { isDataError } from "../../runtime/collector/result-sink.js";
import { chargedTokens } from "../../runtime/shared/db/index.js";
import { logger } from "../../runtime/shared/logger.js";
import { createMetrics } from "../../runtime/shared/metrics.js";
import { makeFailedResult, makeResult } from "./helpers/collector-fixtures.js";

describe("collector settings", () => {
  it("defaults to batches of 256 flushed after 50 ms, prefetching two batches", () => {
    const s = loadCollectorSettings({});
    expect(s).toMatchObject({ batchSize: 256, flushMs: 50, prefetch: 512 });
    expect(s.env.TURNPIKE_DB_SCHEMA).toBe("turnpike");
  });

  it("names every bad variable", () => {
    expect(() =>
      loadCollectorSettings({ TURNPIKE_COLLECTOR_BATCH: "many", TURNPIKE_COLLECTOR_FLUSH_MS: "-1" }),
    ).toThrow(/TURNPIKE_COLLECTOR_BATCH[\s\S]*TURNPIKE_COLLECTOR_FLUSH_MS/);
  });
});

describe("parseResultMessage", () => {
  it("accepts a worker's result and defaults missing step timings", () => {
    const result = makeResult();
    expect(parseResultMessage(Buffer.from(JSON.stringify(result)))).toEqual({ ok: true, result });
    const { steps: _steps, ...withoutSteps } = result;
    const parsed = parseResultMessage(Buffer.from(JSON.stringify(withoutSteps)));
    expect(parsed.ok && parsed.result.steps).toEqual([]);
  });

  it.each([
    ["not JSON", "{", /not JSON/],
    ["a non-UUID id", JSON.stringify({ ...makeResult(), requestId: "r-1" }), /requestId: must be a UUID/],
    ["negative tokens", JSON.stringify({ ...makeResult(), inputTokens: -1 }), /inputTokens/],
    ["an unknown status", JSON.stringify({ ...makeResult(), status: "running" }), /status/],
    [
      "a NUL in the tenant",
      JSON.stringify({ ...makeResult(), tenant: "a\u0000b" }),
      /tenant: must not contain NUL/,
    ],
    ["an array", "[]", /\(root\)/],
  ])("refuses %s", (_label, body, reason) => {
    const parsed = parseResultMessage(Buffer.from(body));
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
  });
});

describe("chargedTokens", () => {
  it("charges input + output for a success and nothing for a failure", () => {
    expect(chargedTokens(makeResult({ inputTokens: 3, outputTokens: 4 }))).toBe(7);
    expect(chargedTokens(makeFailedResult({ inputTokens: 3, outputTokens: 4 }))).toBe(0);
  });
});

describe("backoff", () => {
  it("doubles from 100 ms up to 5 s with jitter between half and all of it", () => {
    expect(backoffMs(0, () => 1)).toBe(100);
    expect(backoffMs(0, () => 0)).toBe(50);
    expect(backoffMs(3, () => 1)).toBe(800);
    expect(backoffMs(50, () => 1)).toBe(5000);
  });

  it("retries until success, stops on a final error or an abort", async () => {
    const log = logger("test");
    let calls = 0;
    const flaky = async () => {
      if (++calls < 3) throw new Error("not yet");
      return "done";
    };
    expect(await retryUntilDone("flaky", flaky, log, new AbortController().signal)).toBe("done");
    expect(calls).toBe(3);

    const final = Object.assign(new Error("bad row"), { code: "22P02" });
    await expect(
      retryUntilDone("bad", () => Promise.reject(final), log, new AbortController().signal, isDataError),
    ).rejects.toBe(final);

    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error("stopped")), 30);
    await expect(
      retryUntilDone("never", () => Promise.reject(new Error("down")), log, stop.signal),
    ).rejects.toThrow(/stopped|down/);
  });

  it("recognises PostgreSQL data errors through wrapping", () => {
    const pgError = Object.assign(new Error("invalid input syntax for type uuid"), { code: "22P02" });
    expect(isDataError(new Error("recording results", { cause: pgError }))).toBe(true);
    expect(isDataError(Object.assign(new Error("terminating"), { code: "57P01" }))).toBe(false);
    expect(isDataError(new Error("ECONNREFUSED"))).toBe(false);
  });
});

describe("Batcher", () => {
  const collect = (size: number, delay: number, handleMs = 0) => {
    const batches: number[][] = [];
    const batcher = new Batcher<number>(
      size,
      delay,
      async (batch) => {
        batches.push(batch);
        if (handleMs) await new Promise((r) => setTimeout(r, handleMs));
      },
      (error) => {
        throw error;
      },
    );
    return { batches, batcher };
  };

  it("hands over full batches at once and a partial one after the delay, in order", async () => {
    const { batches, batcher } = collect(3, 20);
    for (let i = 0; i < 7; i++) batcher.add(i);
    await new Promise((r) => setTimeout(r, 5));
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
    ]);
    await new Promise((r) => setTimeout(r, 40));
    expect(batches).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });

  it("handles one batch at a time and accumulates while busy", async () => {
    const { batches, batcher } = collect(100, 1, 30);
    batcher.add(1);
    await new Promise((r) => setTimeout(r, 10)); // first batch is being handled
    for (let i = 2; i <= 5; i++) batcher.add(i);
    await batcher.flush();
    expect(batches).toEqual([[1], [2, 3, 4, 5]]);
  });

  it("flush() empties everything and discard() forgets waiting items", async () => {
    const { batches, batcher } = collect(2, 60_000);
    batcher.add(1);
    batcher.add(2);
    batcher.add(3);
    await batcher.flush();
    expect(batches).toEqual([[1, 2], [3]]);
    batcher.add(4);
    batcher.discard();
    await batcher.flush();
    expect(batches).toEqual([[1, 2], [3]]);
    expect(batcher.size).toBe(0);
  });
});

describe("probe routes", () => {
  it("answer liveness, readiness and metrics", async () => {
    let ready = false;
    const app = buildProbeApp({ metrics: createMetrics("collector"), isReady: () => ready });
    expect((await app.inject({ url: "/healthz" })).statusCode).toBe(200);
    expect((await app.inject({ url: "/readyz" })).statusCode).toBe(503);
    ready = true;
    expect((await app.inject({ url: "/readyz" })).statusCode).toBe(200);
    const metrics = await app.inject({ url: "/metrics" });
    expect(metrics.headers["content-type"]).toMatch(/text\/plain/);
    expect(metrics.body).toContain("# TYPE turnpike_results_recorded_total counter");
    await app.close();
  });
});

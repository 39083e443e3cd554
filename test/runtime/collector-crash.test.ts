// Crashes and outages on the real services: a collector that dies after committing but before
// acking, a collector process killed with SIGKILL mid-stream, and dropped RabbitMQ, PostgreSQL and
// Redis connections. Every time: exactly one record per request and exactly one quota charge.
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../runtime/collector/collector.js";
import type { InferenceResult } from "../../runtime/shared/contracts/index.js";
import { utcDay } from "../../runtime/shared/db/index.js";
import { makeFailedResult, makeResult } from "./helpers/collector-fixtures.js";
import { dropAmqpConnection } from "./helpers/broker-admin.js";
import { collectorWorld, waitFor, type CollectorWorld } from "./helpers/collector-harness.js";

const repoRoot = fileURLToPath(new URL("../../", import.meta.url));
let world: CollectorWorld | undefined;
const collectors: Collector[] = [];
let child: ChildProcess | undefined;

afterEach(async () => {
  child?.kill("SIGKILL");
  child = undefined;
  for (const c of collectors.splice(0)) await c.close();
  await world?.cleanup();
  world = undefined;
});

async function start(w: CollectorWorld, options: Parameters<typeof startCollector>[0] = {}) {
  const collector = await startCollector({ env: w.env({ TURNPIKE_COLLECTOR_BATCH: "32" }), ...options });
  collectors.push(collector);
  return collector;
}

/** `count` results of one tenant submitted now, every fifth one failed; each reserved in the real quota. */
async function reservedResults(w: CollectorWorld, tenant: string, count: number): Promise<InferenceResult[]> {
  await w.quota.writeTenant(tenant, { tokensPerDay: 10_000_000, concurrentRequests: 100_000 }, []);
  const now = Date.now();
  const results = Array.from({ length: count }, (_, i) =>
    i % 5 === 4
      ? makeFailedResult({ tenant, submittedAt: now, reservedTokens: 40, inputTokens: 4 })
      : makeResult({
          tenant,
          submittedAt: now,
          reservedTokens: 40,
          inputTokens: 3,
          outputTokens: 1 + (i % 11),
        }),
  );
  await Promise.all(results.map((r) => w.quota.reserve(tenant, r.requestId, r.reservedTokens)));
  return results;
}

/** Asserts one record per result, usage counted once, and the quota charged exactly once. */
async function expectExactlyOnce(w: CollectorWorld, tenant: string, results: InferenceResult[]) {
  expect(await w.rowCount()).toBe(results.length);
  const tokens = results.reduce(
    (s, r) => s + (r.status === "succeeded" ? r.inputTokens + r.outputTokens : 0),
    0,
  );
  expect(await w.records.usage(tenant, utcDay(results[0]!.submittedAt))).toEqual({
    tokens,
    requests: results.length,
  });
  const quota = await w.quota.usage(tenant);
  expect(quota.tokensToday).toBe(tokens);
  expect(quota.inFlight).toBe(0);
}

const allNoticed = (w: CollectorWorld, results: InferenceResult[]) => () =>
  results.every((r) => w.noticesFor(r.requestId).length > 0);

describe("collector crashes", () => {
  it("redelivers a batch committed but not acked, without a second record or charge", async () => {
    world = await collectorWorld("coll-crash");
    const w = world;
    const results = await reservedResults(w, "crashy", 20);
    let reachedAck!: () => void;
    const atAck = new Promise<void>((resolve) => (reachedAck = resolve));
    const first = await start(w, {
      env: w.env({ TURNPIKE_COLLECTOR_BATCH: "100", TURNPIKE_COLLECTOR_FLUSH_MS: "50" }),
      hooks: {
        // Stops the first collector for good between "recorded, settled, announced" and the ack.
        beforeAck: () => {
          reachedAck();
          return new Promise<never>(() => undefined);
        },
      },
    });
    await Promise.all(results.map((r) => w.publish(r)));
    await atAck;
    await first.abort();
    // Everything but the ack happened: the records and charges exist already.
    await expectExactlyOnce(w, "crashy", results);
    const noticesBefore = w.notices.length;

    const second = await start(w);
    await waitFor("redelivered notices", () => w.notices.length >= noticesBefore + results.length);
    await expectExactlyOnce(w, "crashy", results);
    // The second collector inserted nothing, so it counted nothing.
    const metrics = await (await fetch(`${second.url}/metrics`)).text();
    expect(metrics).not.toMatch(/turnpike_results_recorded_total\{/);
    expect(metrics).not.toMatch(/ml_tokens_processed_total\{/);
  });

  it("survives a collector process killed with SIGKILL mid-stream", async () => {
    world = await collectorWorld("coll-kill");
    const w = world;
    const results = await reservedResults(w, "killed", 600);
    child = spawn(process.execPath, ["--import", "tsx", "runtime/collector/main.ts"], {
      cwd: repoRoot,
      env: { ...process.env, ...w.env({ TURNPIKE_COLLECTOR_BATCH: "16", TURNPIKE_COLLECTOR_FLUSH_MS: "5" }) },
      stdio: ["ignore", "ignore", "inherit"],
    });
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
      child!.once("exit", (code, signal) => resolve(signal ?? code)),
    );

    // Publish in slices so the child is busy when it dies; kill it once a part is recorded.
    let published = 0;
    const publishing = (async () => {
      for (; published < results.length; published += 50) {
        await Promise.all(results.slice(published, published + 50).map((r) => w.publish(r)));
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    publishing.catch(() => undefined); // awaited below; this only keeps a failed test from leaking it
    const rowsAtKill = await waitFor(
      "some rows from the child",
      async () => {
        const rows = await w.rowCount();
        return rows >= 100 ? rows : undefined;
      },
      30_000,
    );
    child.kill("SIGKILL");
    expect(await exited).toBe("SIGKILL");
    child = undefined;
    await publishing;
    console.log(
      `[crash] child killed with ${rowsAtKill} of ${results.length} rows recorded, ${published} published`,
    );

    await start(w);
    await waitFor("every result recorded", async () => (await w.rowCount()) === results.length, 30_000);
    await waitFor("a notice for every result", allNoticed(w, results), 30_000);
    await expectExactlyOnce(w, "killed", results);
  });

  it("rides out dropped RabbitMQ, PostgreSQL and Redis connections", async () => {
    world = await collectorWorld("coll-drops");
    const w = world;
    const results = await reservedResults(w, "dropped", 120);
    const collector = await start(w);
    const before = results.slice(0, 40);
    await Promise.all(before.map((r) => w.publish(r)));
    await waitFor("first results", allNoticed(w, before));

    // The broker closes the collector's connection, PostgreSQL terminates its sessions, Redis
    // kills its client: all three at once, as when the node's network blips.
    const name = `turnpike-collector-${w.prefix}`;
    await dropAmqpConnection(name);
    await w.pool.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [
      name,
    ]);
    const clients = String(await w.redis.client("LIST"));
    const ids = [...clients.matchAll(/id=(\d+) .*name=(\S+)/g)]
      .filter((m) => m[2] === name)
      .map((m) => m[1]!);
    expect(ids.length).toBeGreaterThan(0);
    for (const id of ids) await w.redis.client("KILL", "ID", id);

    const middle = results.slice(40, 80);
    await Promise.all(middle.map((r) => w.publish(r)));
    await waitFor("results after the drops", allNoticed(w, middle), 30_000);

    // A statement that dies mid-flight: hold a lock so the collector's upsert waits, then terminate
    // its session. The collector must retry (and only then acknowledge).
    const blocker = await w.pool.connect();
    try {
      await blocker.query("BEGIN");
      await blocker.query(`LOCK TABLE "${w.schema}".requests IN ACCESS EXCLUSIVE MODE`);
      const last = results.slice(80);
      await Promise.all(last.map((r) => w.publish(r)));
      const pid = await waitFor("the collector's upsert waiting on the lock", async () => {
        const rows = await w.pool.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [name],
        );
        return rows.rows[0]?.pid;
      });
      await w.pool.query("SELECT pg_terminate_backend($1)", [pid]);
      // The retry blocks on the lock again; nothing may be recorded or announced yet.
      await waitFor("the retried upsert waiting", async () => {
        const rows = await w.pool.query(
          "SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'",
          [name],
        );
        return rows.rowCount === 1;
      });
      expect(last.some((r) => w.noticesFor(r.requestId).length > 0)).toBe(false);
    } finally {
      await blocker.query("ROLLBACK");
      blocker.release();
    }
    await waitFor("results after the terminated statement", allNoticed(w, results), 30_000);
    await expectExactlyOnce(w, "dropped", results);
    await waitFor("ready again", async () => (await fetch(`${collector.url}/readyz`)).status === 200);
  });
});

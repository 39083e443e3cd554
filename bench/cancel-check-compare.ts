/**
 * What the worker's cancellation check costs per task, side by side: one EXISTS per task in a
 * pipeline (as the worker did) against CancelMarks (one EXISTS per tenant for a batch, key by key
 * only for a tenant with a marker). Both check --tasks unmarked tasks of one tenant in batches of
 * --batch (the echo ceiling's median worker batch is ~21-25), alternating in rounds.
 *
 *   npx tsx bench/cancel-check-compare.ts [--tasks=20000] [--batch=24] [--rounds=3]
 *
 * "client" is this process's CPU (the worker's side); "redis" counts the redis-server process, so
 * others' commands on the shared Redis show in both columns alike. Measurements only; nothing asserts.
 */
import { Redis } from "ioredis";
import { tenantKeys } from "../runtime/shared/contracts/index.js";
import { logger } from "../runtime/shared/logger.js";
import { CancelMarks } from "../runtime/worker/cancel-marks.js";
import { arg } from "./lib/compare-sides.js";
import { say, services, sleep, uniqueName } from "./lib/env.js";
import { cpuMs, pidsOf } from "./lib/processes.js";
import { round } from "./lib/stats.js";

const tasks = Number(arg("tasks", "20000"));
const batch = Number(arg("batch", "24"));
const rounds = Number(arg("rounds", "3"));
const prefix = uniqueName("bench-cancel");

const redisMs = () => pidsOf("redis-server").reduce((sum, pid) => sum + cpuMs(pid), 0);
const clientMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** The check as it was: one EXISTS per task, pipelined per batch. */
async function perTask(redis: Redis, ids: string[]) {
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.exists(tenantKeys(prefix, "acme").cancel(id));
  return ((await pipeline.exec()) ?? []).map(([, found]) => found === 1);
}

async function main() {
  const url = services().redisUrl;
  const redis = new Redis(url);
  const marks = new CancelMarks(url, prefix, logger("bench"));
  try {
    await sleep(200); // CancelMarks' connection (it fails open while offline)
    const ids = Array.from({ length: tasks }, (_, i) => `${prefix}-${i}`);
    for (let r = 1; r <= rounds; r++) {
      for (const mode of ["per-task", "per-tenant"] as const) {
        const [client0, redis0, t0] = [clientMs(), redisMs(), performance.now()];
        for (let i = 0; i < ids.length; i += batch) {
          const chunk = ids.slice(i, i + batch);
          if (mode === "per-task") await perTask(redis, chunk);
          else await Promise.all(chunk.map((requestId) => marks.isCancelled({ tenant: "acme", requestId })));
        }
        const [client1, redis1, t1] = [clientMs(), redisMs(), performance.now()];
        const us = (ms: number) => round((ms * 1000) / tasks, 1);
        say(
          `[cancel-check] round ${r} ${mode.padEnd(10)} batch ${batch}: client ${us(client1 - client0)} us/task, redis ${us(redis1 - redis0)} us/task, ${round(tasks / ((t1 - t0) / 1000), 0)}/s`,
        );
      }
    }
  } finally {
    marks.close();
    redis.disconnect();
  }
}

await main();

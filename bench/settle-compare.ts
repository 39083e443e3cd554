/**
 * What settling a collector batch's quota costs, per result, side by side: one settle per result
 * (HMGET + the finish script each, auto-pipelined, as the collector did) against one settleMany per
 * batch (the HMGETs pipelined, one script call for the batch). Both settle the same number of fresh
 * reservations of one tenant in batches of --batch (the echo ceiling's median collector batch is
 * ~24), alternating in rounds so each meets the same moment of a shared machine.
 *
 *   npx tsx bench/settle-compare.ts [--results=6000] [--batch=24] [--rounds=3]
 *
 * "client" is this process's CPU (the collector's side of the calls); "redis" counts the
 * redis-server process, so others' commands on the shared Redis show in both columns alike.
 * Measurements only; nothing asserts.
 */
import { Redis } from "ioredis";
import { QuotaStore, hashApiKey } from "../runtime/shared/quota/index.js";
import { arg } from "./lib/compare-sides.js";
import { say, services, uniqueName } from "./lib/env.js";
import { cpuMs, pidsOf } from "./lib/processes.js";
import { round } from "./lib/stats.js";

type Mode = "per-result" | "batched";
const results = Number(arg("results", "6000"));
const batch = Number(arg("batch", "24"));
const rounds = Number(arg("rounds", "3"));

const redisMs = () => pidsOf("redis-server").reduce((sum, pid) => sum + cpuMs(pid), 0);
const clientMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function oneRun(redis: Redis, mode: Mode) {
  const prefix = uniqueName("bench-settle");
  const store = new QuotaStore(redis, prefix);
  await store.writeTenant("acme", { tokensPerDay: 1e9 }, [hashApiKey(prefix)]);
  const ids = Array.from({ length: results }, (_, i) => `${prefix}-${i}`);
  await Promise.all(ids.map((id) => store.reserve("acme", id, 50)));
  const [client0, redis0, t0] = [clientMs(), redisMs(), performance.now()];
  for (let i = 0; i < ids.length; i += batch) {
    const chunk = ids.slice(i, i + batch);
    if (mode === "batched")
      await store.settleMany(
        "acme",
        chunk.map((requestId) => ({ requestId, actualTokens: 7 })),
      );
    else await Promise.all(chunk.map((id) => store.settle("acme", id, 7)));
  }
  const [client1, redis1, t1] = [clientMs(), redisMs(), performance.now()];
  const left = (await store.usage("acme")).inFlight;
  const keys = await redis.keys(`tp:{${prefix}/*`);
  for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
  if (left !== 0) throw new Error(`${mode}: ${left} reservations left unsettled`);
  const us = (ms: number) => round((ms * 1000) / results, 1);
  return {
    client: us(client1 - client0),
    redis: us(redis1 - redis0),
    perSecond: round(results / ((t1 - t0) / 1000), 0),
  };
}

async function main() {
  const redis = new Redis(services().redisUrl, { enableAutoPipelining: true });
  try {
    for (let r = 1; r <= rounds; r++) {
      for (const mode of ["per-result", "batched"] as const) {
        const m = await oneRun(redis, mode);
        say(
          `[settle] round ${r} ${mode.padEnd(10)} batch ${batch}: client ${m.client} us/result, redis ${m.redis} us/result, ${m.perSecond}/s`,
        );
      }
    }
  } finally {
    redis.disconnect();
  }
}

await main();

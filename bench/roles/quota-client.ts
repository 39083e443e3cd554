/**
 * One "gateway process" of the quota benchmark: its own ioredis connection and QuotaStore, running
 * `concurrency` reserve loops against one tenant once the parent says go, for a fixed time. It
 * reports how many reservations were accepted (and their tokens) and refused. Started by
 * bench/sections/quota.ts with an IPC channel.
 */
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import { Redis } from "ioredis";
import { QuotaStore } from "../../runtime/shared/quota/index.js";

export interface QuotaClientStart {
  redisUrl: string;
  prefix: string;
  tenant: string;
  concurrency: number;
  durationMs: number;
}

export interface QuotaClientReport {
  calls: number;
  accepted: number;
  acceptedTokens: number;
  refused: number;
  errors: number;
  elapsedMs: number;
  /** Latency samples of reserve calls (ms), every 16th call. */
  samples: number[];
}

const send = (message: unknown) => process.send!(message);

process.once("message", (raw) => {
  void (async () => {
    const start = raw as QuotaClientStart;
    const redis = new Redis(start.redisUrl, { connectionName: "turnpike-bench-quota" });
    const quota = new QuotaStore(redis, start.prefix);
    // The first call loads the Lua script (EVALSHA falls back to EVAL); keep it out of the timing.
    await quota.reserve(start.tenant, randomUUID(), 0);
    send({ ready: true });
    await new Promise<void>((resolve) => process.once("message", () => resolve()));

    const report: QuotaClientReport = {
      calls: 0,
      accepted: 0,
      acceptedTokens: 0,
      refused: 0,
      errors: 0,
      elapsedMs: 0,
      samples: [],
    };
    const began = performance.now();
    const deadline = began + start.durationMs;
    const loop = async (index: number) => {
      for (let i = 0; performance.now() < deadline; i++) {
        // Varying sizes (1..50): a reservation must fit the exact remainder, not just any slot.
        const tokens = 1 + ((i * 7 + index) % 50);
        const t = performance.now();
        try {
          const result = await quota.reserve(start.tenant, randomUUID(), tokens);
          if (result.ok) {
            report.accepted++;
            report.acceptedTokens += tokens;
          } else report.refused++;
        } catch {
          report.errors++;
        }
        if (report.calls++ % 16 === 0) report.samples.push(performance.now() - t);
      }
    };
    await Promise.all(Array.from({ length: start.concurrency }, (_, i) => loop(i)));
    report.elapsedMs = performance.now() - began;
    send(report);
    redis.disconnect();
    process.disconnect();
  })().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
});

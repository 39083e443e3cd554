/**
 * Section 3, quota: QuotaStore.reserve against the real Redis from several processes at once (each
 * its own ioredis connection, as separate gateway replicas would be), against one tenant whose
 * tokens-per-day limit is crossed during the run. Afterwards Redis itself says how many tokens were
 * charged: any token beyond the limit is an accounting error (overspend), and the charged total
 * must equal what the clients were told they got.
 */
import { Redis } from "ioredis";
import { QuotaStore } from "../../runtime/shared/quota/index.js";
import type { QuotaClientReport, QuotaClientStart } from "../roles/quota-client.js";
import { say, services, uniqueName } from "../lib/env.js";
import { CpuMeter, cpuWindow, startTs, type ChildHandle } from "../lib/processes.js";
import { summarize, type LatencySummary } from "../lib/stats.js";

export interface QuotaLevelResult {
  clients: number;
  processes: number;
  /** reserve calls per second, accepted and refused alike (each runs the full Lua script). */
  reservationsPerSecond: number;
  acceptedPerSecond: number;
  accepted: number;
  refused: number;
  errors: number;
  limitTokens: number;
  chargedTokens: number;
  /** Tokens charged beyond the limit, read from Redis: must be 0. */
  overspendTokens: number;
  /** Charged (Redis) minus accepted (what the clients were told): must be 0. */
  accountingDifference: number;
  latency: LatencySummary;
  /** CPU of the Redis server, in % of one core. */
  redisCpuPercent: number;
  /** CPU of the client processes together, in % of one core. */
  clientCpuPercent: number;
  machineBusyPercent: number;
  foreignCpuPercent: number;
}

const TENANT = "bench";

function sumClients(cpuMs: Record<string, number>): number {
  return Object.entries(cpuMs)
    .filter(([k]) => k.startsWith("client "))
    .reduce((a, [, v]) => a + v, 0);
}

export async function quota(levels: number[], processes: number, seconds: number) {
  const urls = services();
  const results: QuotaLevelResult[] = [];
  for (const clients of levels) {
    const prefix = uniqueName("bench-quota");
    const redis = new Redis(urls.redisUrl);
    const store = new QuotaStore(redis, prefix);
    // Crossed early in the run, so refusals at the boundary are under full contention.
    const limitTokens = 25 * 2_000 * seconds;
    await store.writeTenant(TENANT, { tokensPerDay: limitTokens }, []);
    const count = Math.min(processes, clients);
    const children: ChildHandle[] = [];
    try {
      const start: QuotaClientStart[] = Array.from({ length: count }, (_, i) => ({
        redisUrl: urls.redisUrl,
        prefix,
        tenant: TENANT,
        concurrency: Math.floor(clients / count) + (i < clients % count ? 1 : 0),
        durationMs: seconds * 1000,
      }));
      const ready: Promise<unknown>[] = [];
      const reports: Promise<QuotaClientReport>[] = [];
      for (const [i, s] of start.entries()) {
        const child = startTs(`quota-client-${i}`, "bench/roles/quota-client.ts", {}, { ipc: true });
        children.push(child);
        const messages: unknown[] = [];
        const waiters: ((m: unknown) => void)[] = [];
        child.child.on("message", (m) => {
          const w = waiters.shift();
          if (w) w(m);
          else messages.push(m);
        });
        const next = () =>
          new Promise<unknown>((resolve, reject) => {
            const m = messages.shift();
            if (m !== undefined) return resolve(m);
            waiters.push(resolve);
            child.exited.then(() => reject(new Error(`quota client ${i} exited early`)));
          });
        child.child.send(s);
        ready.push(next());
        reports.push(ready.at(-1)!.then(() => next() as Promise<QuotaClientReport>));
      }
      await Promise.all(ready);
      const meter = new CpuMeter().trackServices();
      for (const [i, child] of children.entries()) meter.track(`client ${i}`, () => [child.pid]);
      const window = cpuWindow(meter);
      for (const child of children) child.child.send("go");
      const done = await Promise.all(reports);
      const cpu = window.end();
      const elapsedMs = Math.max(...done.map((r) => r.elapsedMs));
      const sum = (f: (r: QuotaClientReport) => number) => done.reduce((a, r) => a + f(r), 0);
      const usage = await store.usage(TENANT);
      const calls = sum((r) => r.calls);
      const result: QuotaLevelResult = {
        clients,
        processes: count,
        reservationsPerSecond: Math.round(calls / (elapsedMs / 1000)),
        acceptedPerSecond: Math.round(sum((r) => r.accepted) / (elapsedMs / 1000)),
        accepted: sum((r) => r.accepted),
        refused: sum((r) => r.refused),
        errors: sum((r) => r.errors),
        limitTokens,
        chargedTokens: usage.tokensToday,
        overspendTokens: Math.max(0, usage.tokensToday - limitTokens),
        accountingDifference: usage.tokensToday - sum((r) => r.acceptedTokens),
        latency: summarize(done.flatMap((r) => r.samples)),
        redisCpuPercent: Math.round(((cpu.cpuMs.redis ?? 0) / elapsedMs) * 1000) / 10,
        clientCpuPercent: Math.round((sumClients(cpu.cpuMs) / elapsedMs) * 1000) / 10,
        machineBusyPercent: cpu.busyPercent,
        foreignCpuPercent: cpu.foreignPercent,
      };
      say(
        `quota ${clients} clients / ${count} processes: ${result.reservationsPerSecond} reserve/s, ` +
          `overspend ${result.overspendTokens}, accounting diff ${result.accountingDifference}, ` +
          `redis ${result.redisCpuPercent}%, clients ${result.clientCpuPercent}%, foreign ${result.foreignCpuPercent}%`,
      );
      results.push(result);
    } finally {
      for (const child of children) await child.stop().catch(() => undefined);
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", `tp:{${prefix}/*`, "COUNT", 5000);
        if (keys.length > 0) await redis.unlink(...keys);
        cursor = next;
      } while (cursor !== "0");
      redis.disconnect();
    }
  }
  return results;
}

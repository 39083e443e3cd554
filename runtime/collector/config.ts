/** The collector's typed, validated settings: the common runtime env plus its batching knobs. */
import { z } from "zod";
import { commonEnvSchema, parseEnv } from "../shared/process-env.js";

export const collectorEnvSchema = commonEnvSchema.extend({
  /** Most results committed in one PostgreSQL statement (and acked with one multiple-ack). */
  TURNPIKE_COLLECTOR_BATCH: z.coerce.number().int().min(1).max(10_000).default(256),
  /**
   * Longest a result waits for its batch to fill before it is committed anyway. Synchronous answers
   * do not wait for the commit (they come straight from the worker), so a longer window costs only
   * the delay before a record is readable; at a moderate rate it makes batches several times larger
   * (bench/README.md "Synchronous path": 10 -> 50 ms halved the collector's and PostgreSQL's CPU
   * per request one at a time).
   */
  TURNPIKE_COLLECTOR_FLUSH_MS: z.coerce.number().int().min(0).max(60_000).default(50),
  /**
   * The collector process's nice value (0-19; 0 = as the other roles). It records and settles after
   * the answer, so on a shared host its bursts (a flush's parse, commit and settles every
   * FLUSH_MS) wait for the answer path instead of delaying it (bench/README.md "Eighth round").
   */
  TURNPIKE_COLLECTOR_NICE: z.coerce.number().int().min(0).max(19).default(10),
  /** How long a graceful close may spend flushing before it gives up (unacked results are redelivered). */
  TURNPIKE_COLLECTOR_CLOSE_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(15_000),
});

export type CollectorEnv = z.infer<typeof collectorEnvSchema>;

/** Settings the collector actually uses, named for the code rather than the environment. */
export interface CollectorSettings {
  env: CollectorEnv;
  batchSize: number;
  flushMs: number;
  closeTimeoutMs: number;
  /**
   * Unacked deliveries the broker may push to us: two batches, so the next batch fills while the
   * current one commits (the DB round trip is the collector's critical path).
   */
  prefetch: number;
}

/** Parses the environment; throws one error naming every bad variable. */
export function loadCollectorSettings(env: NodeJS.ProcessEnv = process.env): CollectorSettings {
  const parsed = parseEnv(collectorEnvSchema, env);
  return {
    env: parsed,
    batchSize: parsed.TURNPIKE_COLLECTOR_BATCH,
    flushMs: parsed.TURNPIKE_COLLECTOR_FLUSH_MS,
    closeTimeoutMs: parsed.TURNPIKE_COLLECTOR_CLOSE_TIMEOUT_MS,
    prefetch: Math.min(65_535, parsed.TURNPIKE_COLLECTOR_BATCH * 2),
  };
}

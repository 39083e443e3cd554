/**
 * Whether the tenant cancelled a request (DELETE /v1/requests/{id} sets a tenant-scoped marker in
 * Redis). The consumer asks once per task, where it accepts the task for running, whatever queue
 * the task came from.
 *
 * Fails open: when Redis does not answer within a short timeout the task runs, since a worker that
 * stalled on Redis would stall every tenant; the cancellation then simply came too late.
 */
import { Redis } from "ioredis";
import { tenantKeys, type InferenceTask } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";

/** How long one check may take before the task runs anyway. */
const CHECK_TIMEOUT_MS = 250;

/** The question the consumer asks before running a task. */
export interface CancelCheck {
  isCancelled(task: Pick<InferenceTask, "requestId" | "tenant">): Promise<boolean>;
}

/** Reads cancel markers from Redis. */
export class CancelMarks implements CancelCheck {
  private readonly redis: Redis;
  private warnedAt = 0;
  private pending: { key: string; resolve: (cancelled: boolean) => void }[] = [];

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {
    this.redis = new Redis(url, {
      connectionName: "turnpike-worker-cancel",
      // No auto-pipelining and no commandTimeout: with offline queueing off, both led ioredis into
      // "Command queue state error" (an uncaught throw in its reply handler) when Redis dropped
      // the connection under load. The timeout is ours instead (the late reply is simply ignored).
      maxRetriesPerRequest: 1,
      // Tasks must not wait for a connection that is not there: fail the check at once instead.
      enableOfflineQueue: false,
    });
    this.redis.on("error", () => undefined);
  }

  /**
   * Checks asked for in the same turn of the event loop (a batch of deliveries) go to Redis as one
   * pipeline: one write and one reply instead of one round trip per task.
   */
  isCancelled(task: Pick<InferenceTask, "requestId" | "tenant">): Promise<boolean> {
    const key = tenantKeys(this.prefix, task.tenant).cancel(task.requestId.toLowerCase());
    return new Promise<boolean>((resolve) => {
      this.pending.push({ key, resolve });
      if (this.pending.length === 1) setImmediate(() => void this.flush());
    });
  }

  private async flush(): Promise<void> {
    const checks = this.pending;
    this.pending = [];
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from Redis in ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      });
      const found = await Promise.race([this.lookUp(checks.map((c) => c.key)), timeout]);
      checks.forEach((check, i) => check.resolve(found[i] === true));
    } catch (err) {
      this.warn(err);
      for (const check of checks) check.resolve(false);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Which of `keys` exist. One EXISTS per tenant (its keys share a hash slot) counts the tenant's
   * markers; almost always none, and then that one command answers for all of them. Only a tenant
   * with a marker among its keys is asked key by key, in a second round trip.
   */
  private async lookUp(keys: string[]): Promise<boolean[]> {
    const byTag = new Map<string, number[]>();
    keys.forEach((key, i) => {
      const tag = key.slice(0, key.indexOf("}") + 1);
      const list = byTag.get(tag);
      if (list) list.push(i);
      else byTag.set(tag, [i]);
    });
    const groups = [...byTag.values()];
    const counts = this.redis.pipeline();
    for (const group of groups) counts.exists(...group.map((i) => keys[i]!));
    const found = new Array<boolean>(keys.length).fill(false);
    const marked: number[] = [];
    ((await counts.exec()) ?? []).forEach(([error, count], g) => {
      if (error) throw error;
      if (count !== 0) marked.push(...groups[g]!);
    });
    if (marked.length === 0) return found;
    const each = this.redis.pipeline();
    for (const i of marked) each.exists(keys[i]!);
    ((await each.exec()) ?? []).forEach(([error, count], j) => {
      if (error) throw error;
      found[marked[j]!] = count === 1;
    });
    return found;
  }

  private warn(err: unknown): void {
    if (Date.now() - this.warnedAt > 10_000) {
      this.warnedAt = Date.now();
      this.log.warn({ err }, "cannot check cancellations in Redis; running tasks anyway");
    }
  }

  close(): void {
    this.redis.disconnect();
  }
}

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
      const pipeline = this.redis.pipeline();
      for (const check of checks) pipeline.exists(check.key);
      const replies = await Promise.race([pipeline.exec(), timeout]);
      checks.forEach((check, i) => {
        const [error, found] = replies?.[i] ?? [new Error("no reply")];
        if (error) this.warn(error);
        check.resolve(!error && found === 1);
      });
    } catch (err) {
      this.warn(err);
      for (const check of checks) check.resolve(false);
    } finally {
      clearTimeout(timer);
    }
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

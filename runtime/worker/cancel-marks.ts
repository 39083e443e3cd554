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

  async isCancelled(task: Pick<InferenceTask, "requestId" | "tenant">): Promise<boolean> {
    try {
      const key = tenantKeys(this.prefix, task.tenant).cancel(task.requestId.toLowerCase());
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer from Redis in ${CHECK_TIMEOUT_MS} ms`)),
          CHECK_TIMEOUT_MS,
        );
      });
      try {
        return (await Promise.race([this.redis.exists(key), timeout])) === 1;
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      if (Date.now() - this.warnedAt > 10_000) {
        this.warnedAt = Date.now();
        this.log.warn({ err }, "cannot check cancellations in Redis; running tasks anyway");
      }
      return false;
    }
  }

  close(): void {
    this.redis.disconnect();
  }
}

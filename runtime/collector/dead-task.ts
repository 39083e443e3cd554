/**
 * Tasks RabbitMQ dead-lettered from a model queue: workers kept crashing on one, or could never
 * publish its outcome, until the queue's delivery limit gave up on it. Nothing else would ever
 * record such a request or release its reservation, so the collector turns each into a failed
 * result (code `dead_lettered`, charged nothing, like every failure). It reads them from its own
 * copy of the dead letters (the dead-task queue, bound to the same fanout exchange as the DLQ,
 * which keeps its copy for people to inspect). Pure.
 */
import type { InferenceResult } from "../shared/contracts/index.js";
import { readTaskHeader } from "../shared/task-body.js";
import { checkResult } from "./result-message.js";

/** A dead letter the collector records, or one it leaves to the DLQ (why, for the log). */
export type DeadLetter = { ok: true; result: InferenceResult } | { ok: false; reason: string };

/** One entry of RabbitMQ's `x-death` header. */
interface Death {
  queue?: unknown;
  reason?: unknown;
  count?: unknown;
}

/**
 * The failed result for a dead-lettered message, if it is a task that died in one of this
 * installation's model queues (`modelQueuePrefix`, e.g. "turnpike.acme.model."). Results the
 * collector dead-lettered itself, and anything unreadable, are not.
 */
export function deadTaskResult(
  content: Buffer,
  headers: Record<string, unknown> | undefined,
  modelQueuePrefix: string,
  now = Date.now(),
): DeadLetter {
  const queue = headers?.["x-first-death-queue"];
  if (typeof queue !== "string" || !queue.startsWith(modelQueuePrefix)) {
    return { ok: false, reason: `not dead-lettered by a model queue (x-first-death-queue ${String(queue)})` };
  }
  let task: Record<string, unknown>;
  try {
    // Either form of task body; the record needs only the JSON fields, not the tensor bytes.
    task = readTaskHeader(content) as Record<string, unknown>;
  } catch (error) {
    return { ok: false, reason: (error as Error).message };
  }
  if (typeof task !== "object" || task === null) return { ok: false, reason: "not a task object" };
  const death = (Array.isArray(headers?.["x-death"]) ? headers["x-death"][0] : undefined) as
    | Death
    | undefined;
  const reason = typeof death?.reason === "string" ? death.reason : String(headers?.["x-first-death-reason"]);
  const count = typeof death?.count === "number" ? `, dead-lettered ${death.count}x` : "";
  const checked = checkResult({
    requestId: task.requestId,
    tenant: task.tenant,
    target: task.target,
    status: "failed",
    error: {
      code: "dead_lettered",
      message: `no worker could finish this request: RabbitMQ gave up on it in ${queue} (${reason}${count})`,
    },
    reservedTokens: task.reservedTokens,
    inputTokens: task.inputTokens,
    outputTokens: 0,
    submittedAt: task.submittedAt,
    finishedAt: now,
    steps: task.steps ?? [],
  });
  return checked.ok ? checked : { ok: false, reason: `not a task: ${checked.reason}` };
}

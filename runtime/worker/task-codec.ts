/**
 * Reading InferenceTask messages and building what the worker publishes (the next step's task or
 * the final InferenceResult). Pure functions.
 */
import { z } from "zod";
import {
  taskSchema,
  type InferenceResult,
  type InferenceTask,
  type StepTiming,
} from "../shared/contracts/index.js";
import { decodeTaskBody, TaskBodyError } from "../shared/task-body.js";
import { encodeTensor, type DecodedTensor } from "../shared/tensors.js";
import { StepError } from "./step-error.js";

/** Header carrying when a message was enqueued (epoch ms), for the next step's queue time. */
export const ENQUEUED_AT_HEADER = "x-turnpike-enqueued-at";

/** The fields a failed result needs; present whenever a message is a task at all. */
const identitySchema = taskSchema.pick({ requestId: true, tenant: true, target: true });

/** A message body that is not an InferenceTask at all (not JSON, or no request id/tenant/target). */
export class UnreadableMessageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "UnreadableMessageError";
  }
}

/**
 * Parses a message body of either form (runtime/shared/task-body.ts). Throws
 * UnreadableMessageError when there is no request to answer (the message is requeued and
 * eventually dead-lettered), or a StepError `invalid_task` carrying a best-effort task when the
 * request can be identified but is malformed (it gets a failed result).
 */
export function parseTask(body: Buffer): InferenceTask {
  let raw: unknown;
  try {
    raw = decodeTaskBody(body, { keepDictionaries: true }); // expanded when stacked: task-inputs.ts
  } catch (cause) {
    const header = cause instanceof TaskBodyError ? identitySchema.safeParse(cause.header) : undefined;
    if (cause instanceof TaskBodyError && header?.success) {
      throw new MalformedTaskError(
        salvage(cause.header as Record<string, unknown>, header.data),
        cause.message,
      );
    }
    if (cause instanceof TaskBodyError) throw new UnreadableMessageError(cause.message);
    throw new UnreadableMessageError("message body is unreadable", { cause });
  }
  const parsed = taskSchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const identity = identitySchema.safeParse(raw);
  if (!identity.success) {
    throw new UnreadableMessageError("message is not an InferenceTask (no requestId, tenant or target)");
  }
  const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new MalformedTaskError(salvage(raw as Record<string, unknown>, identity.data), problems.join("; "));
}

/** A task whose identity is known but whose body is invalid: it ends with a failed result. */
export class MalformedTaskError extends StepError {
  constructor(
    readonly task: InferenceTask,
    problems: string,
  ) {
    super("invalid_task", `malformed task: ${problems}`);
  }
}

function salvage(raw: Record<string, unknown>, identity: z.infer<typeof identitySchema>): InferenceTask {
  const number = (value: unknown) => (typeof value === "number" && Number.isFinite(value) ? value : 0);
  return {
    ...identity,
    route: [],
    inputs: [],
    reservedTokens: number(raw.reservedTokens),
    inputTokens: number(raw.inputTokens),
    outputTokens: number(raw.outputTokens),
    submittedAt: number(raw.submittedAt),
    steps: [],
  };
}

/**
 * The task for the next segment of the route: outputs become inputs (raw bytes, published with
 * encodeTaskBody), tokens and timings add up.
 */
export function nextTask(
  task: InferenceTask,
  rest: InferenceTask["route"],
  outputs: readonly DecodedTensor[],
  outputTokens: number,
  timings: readonly StepTiming[],
): InferenceTask {
  return {
    ...task,
    route: rest,
    inputs: outputs.map((o) => encodeTensor(o, { raw: true })),
    outputTokens: task.outputTokens + outputTokens,
    steps: [...task.steps, ...timings],
  };
}

/** The succeeded result of a finished route. */
export function succeededResult(
  task: InferenceTask,
  outputs: readonly DecodedTensor[],
  outputTokens: number,
  timings: readonly StepTiming[],
  finishedAt = Date.now(),
): InferenceResult {
  return {
    ...resultBase(task, finishedAt),
    status: "succeeded",
    outputs: outputs.map((o) => encodeTensor(o)),
    outputTokens: task.outputTokens + outputTokens,
    steps: [...task.steps, ...timings],
  };
}

/** The failed result of a request; tokens produced by earlier segments stay charged. */
export function failedResult(
  task: InferenceTask,
  error: StepError,
  finishedAt = Date.now(),
): InferenceResult {
  return {
    ...resultBase(task, finishedAt),
    status: "failed",
    error: { code: error.code, message: error.message },
    outputTokens: task.outputTokens,
    steps: task.steps,
  };
}

/** Error code of a request the tenant cancelled (DELETE /v1/requests/{id}). */
export const CANCELLED_CODE = "cancelled";

/**
 * The result of a task the tenant cancelled before this step ran: it charges only what earlier
 * steps of its route ran (nothing for a request that never started).
 */
export function cancelledResult(task: InferenceTask, finishedAt = Date.now()): InferenceResult {
  const ran = task.steps.length > 0;
  return {
    ...resultBase(task, finishedAt),
    status: "cancelled",
    error: { code: CANCELLED_CODE, message: "cancelled by the tenant before it ran" },
    inputTokens: ran ? task.inputTokens : 0,
    outputTokens: task.outputTokens,
    steps: task.steps,
  };
}

function resultBase(task: InferenceTask, finishedAt: number) {
  return {
    requestId: task.requestId,
    tenant: task.tenant,
    target: task.target,
    reservedTokens: task.reservedTokens,
    inputTokens: task.inputTokens,
    submittedAt: task.submittedAt,
    finishedAt,
    // A cache miss: the collector stores the answer under this key once it is recorded.
    ...(task.cache ? { cache: task.cache } : {}),
  };
}

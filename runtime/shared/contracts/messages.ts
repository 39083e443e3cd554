/**
 * The messages that travel on the queues, each written once as a zod schema; the TypeScript types
 * are inferred from them. The worker parses tasks with {@link taskSchema}; the collector parses
 * results with the stricter {@link resultSchema} (what PostgreSQL can record).
 */
import { z } from "zod";
import { cachedFlagSchema, cacheStoreSchema } from "./result-cache.js";
import { DATATYPES, FINAL_REQUEST_STATUSES, type FinalRequestStatus } from "./vocabulary.js";

/** Any 8-4-4-4-12 hex string: what PostgreSQL's uuid type accepts (no version check). */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const count = z.number().int().min(0);
const targetKind = z.enum(["model", "pipeline"]);

/**
 * A tensor as it travels on a queue. Numeric data is the little-endian bytes of the typed array:
 * in a task, raw (a `Uint8Array`, carried after the task's JSON header, see {@link TASK_FRAME}); in
 * a result, and in a task of the older all-JSON form, base64-encoded. (A 48x320 RGB tensor is
 * 184 KB raw, 245 KB as base64, ~4x that as JSON numbers.) BYTES tensors carry one base64 string
 * per element.
 */
const wireTensorSchema = z.object({
  name: z.string().min(1),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(0)),
  data: z.union([z.string(), z.array(z.string()), z.instanceof(Uint8Array)]),
});

/**
 * How a task with raw tensor bytes is framed in one AMQP body (runtime/shared/task-body.ts reads
 * and writes it): the 4 magic bytes, the JSON header's byte length (uint32 little-endian), the JSON
 * header (the task, where each raw tensor has `binaryDataSize` instead of `data`), then each raw
 * tensor's bytes in the order of `inputs`. A tensor of 4-byte elements with at most 256 distinct
 * ones (a normalised image) may instead carry `binaryDictionarySize` = K as well: its
 * `binaryDataSize` bytes are then a table of K 4-byte elements followed by one uint8 index into it
 * per element (runtime/shared/tensor-dictionary.ts). A body that starts with `{` is a task of the
 * older all-JSON form, still read so that tasks queued during an upgrade are not lost. The other way
 * round is not covered: a worker or collector older than this framing cannot read a framed task
 * (the worker requeues it until the delivery limit dead-letters it), and a worker older than the
 * dictionary reads such a tensor as the wrong size and fails the request, so upgrade workers and
 * collectors before the gateways.
 */
export const TASK_FRAME = {
  magic: "TPK1",
  contentType: "application/vnd.turnpike.task",
  /** The key that replaces `data` in the JSON header of a raw tensor. */
  sizeKey: "binaryDataSize",
  /** The key of a dictionary-encoded tensor's table length, in elements. */
  dictionaryKey: "binaryDictionarySize",
} as const;

/** One hop of a request's route: an InferenceModel or a built-in processor. */
const routeStepSchema = z.object({
  /** Step name (the model name for single-model requests). */
  step: z.string().min(1),
  /** InferenceModel name, when the step runs a model. */
  model: z.string().optional(),
  /** Built-in processor, when the step runs one. */
  processor: z.string().optional(),
});

const stepTimingSchema = z.object({
  step: z.string(),
  worker: z.string(),
  queuedMs: z.number(),
  inferMs: z.number(),
  batchSize: z.number(),
});

/** Published by the gateway to the first step's queue; AMQP messageId = requestId. */
export const taskSchema = z.object({
  requestId: z.string().min(1),
  tenant: z.string().min(1),
  /** What the request targets. */
  target: z.object({ kind: targetKind, name: z.string().min(1) }),
  /** Remaining route; route[0] is the step the receiving worker runs. */
  route: z.array(routeStepSchema),
  inputs: z.array(wireTensorSchema),
  parameters: z.record(z.string(), z.unknown()).optional(),
  /** Tokens reserved for the whole route (input + max output); settled once, at the end. */
  reservedTokens: count,
  inputTokens: count,
  /** Output tokens produced by earlier steps of a pipeline. */
  outputTokens: count,
  submittedAt: z.number(),
  /** Epoch ms after which the result is no longer wanted (the request still completes). */
  deadlineAt: z.number().optional(),
  /** Per-step timings accumulated along the route. */
  steps: z.array(stepTimingSchema),
  /** A cache miss: where the collector stores the answer once it is recorded. */
  cache: cacheStoreSchema.optional(),
  /**
   * The answering gateway's own queue: the last worker's one result publish is routed there too
   * (BCC), so a waiting caller is answered without waiting for the record. Unset: no direct answer.
   */
  replyTo: z.string().min(1).max(255).optional(),
});

// PostgreSQL text and jsonb refuse U+0000: a string carrying it would fail the whole batch statement.
const text = z.string().refine((s) => !s.includes("\0"), "must not contain NUL characters");
const safeCount = count.max(Number.MAX_SAFE_INTEGER);
const epochMs = z.number().finite().min(0).max(8.64e15);

/** Published by the last worker to the results queue; AMQP messageId = requestId. */
export const resultSchema = z.object({
  requestId: z.string().regex(UUID_PATTERN, "must be a UUID"),
  tenant: text.min(1).max(253),
  target: z.object({ kind: targetKind, name: text.min(1).max(253) }),
  /** `cancelled`: the tenant cancelled it (DELETE /v1/requests/{id}); it charges what ran. */
  status: z.enum(FINAL_REQUEST_STATUSES),
  // Results stay JSON (the collector stores them): base64 data, never raw bytes.
  outputs: z
    .array(wireTensorSchema.extend({ name: text.min(1), data: z.union([text, z.array(text)]) }))
    .optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  reservedTokens: safeCount,
  inputTokens: safeCount,
  outputTokens: safeCount,
  submittedAt: epochMs,
  finishedAt: epochMs,
  steps: z
    .array(
      stepTimingSchema.extend({
        queuedMs: z.number().finite().min(0),
        inferMs: z.number().finite().min(0),
        batchSize: z.number().int().min(0),
      }),
    )
    .default([]),
  /** Carried on from the task: the collector stores a succeeded answer in the result cache. */
  cache: cacheStoreSchema.optional(),
  /** Set on a cache hit (published by the gateway, no worker ran): recorded with `cached = true`. */
  cached: cachedFlagSchema.optional(),
});

export type WireTensor = z.infer<typeof wireTensorSchema>;
/** A tensor of a result: base64 data only. */
export type ResultTensor = NonNullable<InferenceResult["outputs"]>[number];
export type RouteStep = z.infer<typeof routeStepSchema>;
export type Target = InferenceTask["target"];
export type StepTiming = z.infer<typeof stepTimingSchema>;
export type InferenceTask = z.infer<typeof taskSchema>;
export type InferenceResult = z.infer<typeof resultSchema>;

/**
 * AMQP `type` of a result message. A gateway's own queue receives results (this type) and
 * generation StreamMessages (no type) side by side.
 */
export const RESULT_MESSAGE_TYPE = "turnpike.result";

/**
 * AMQP `type` of a message that carries several results of one worker batch, all for the same
 * answering gateway, as a JSON array of InferenceResult (AMQP messageId = the first one's
 * requestId). Published to the result-batch queue (names().resultBatchQueue) and routed (BCC) to
 * that gateway's queue: one enqueue, confirm and delivery per batch instead of per request.
 */
export const RESULT_BATCH_MESSAGE_TYPE = "turnpike.result-batch";

/**
 * Broadcast by the collector (Redis pub/sub) once a result is durable. One message carries the
 * notices of one committed batch as a JSON array (a single object is read too).
 */
export interface CompletionNotice {
  requestId: string;
  tenant: string;
  status: FinalRequestStatus;
}

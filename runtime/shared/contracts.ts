/**
 * The wire contracts: every queue, exchange, Redis key and message shape that crosses a process
 * boundary is named here and nowhere else. The operator declares the same names the runtime uses.
 */

/** Open Inference Protocol v2 datatypes that Turnpike carries. */
export const DATATYPES = [
  "BOOL",
  "UINT8",
  "INT8",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export type Datatype = (typeof DATATYPES)[number];

/**
 * A tensor as it travels on a queue. Numeric data is the little-endian bytes of the typed array,
 * base64-encoded (a 48x320 RGB tensor is 184 KB raw; as JSON numbers it would be ~4x that).
 * BYTES tensors carry one base64 string per element.
 */
export interface WireTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  data: string | string[];
}

/** One hop of a request's route: an InferenceModel or a built-in processor. */
export interface RouteStep {
  /** Step name (the model name for single-model requests). */
  step: string;
  /** InferenceModel name, when the step runs a model. */
  model?: string;
  /** Built-in processor, when the step runs one. */
  processor?: string;
}

/** What a request targets. */
export interface Target {
  kind: "model" | "pipeline";
  name: string;
}

/** Published by the gateway to the first step's queue; AMQP messageId = requestId. */
export interface InferenceTask {
  requestId: string;
  tenant: string;
  target: Target;
  /** Remaining route; route[0] is the step the receiving worker runs. */
  route: RouteStep[];
  inputs: WireTensor[];
  parameters?: Record<string, unknown>;
  /** Tokens reserved for the whole route (input + max output); settled once, at the end. */
  reservedTokens: number;
  inputTokens: number;
  /** Output tokens produced by earlier steps of a pipeline. */
  outputTokens: number;
  submittedAt: number;
  /** Epoch ms after which the result is no longer wanted (the request still completes). */
  deadlineAt?: number;
  /** Per-step timings accumulated along the route. */
  steps: StepTiming[];
}

export interface StepTiming {
  step: string;
  worker: string;
  queuedMs: number;
  inferMs: number;
  batchSize: number;
}

export type RequestStatus = "queued" | "running" | "succeeded" | "failed";
export const FINAL_STATUSES: readonly RequestStatus[] = ["succeeded", "failed"];

/** Published by the last worker to the results queue; AMQP messageId = requestId. */
export interface InferenceResult {
  requestId: string;
  tenant: string;
  target: Target;
  status: "succeeded" | "failed";
  outputs?: WireTensor[];
  error?: { code: string; message: string };
  reservedTokens: number;
  inputTokens: number;
  outputTokens: number;
  submittedAt: number;
  finishedAt: number;
  steps: StepTiming[];
}

/** Broadcast by the collector (Redis pub/sub) once a result is durable. */
export interface CompletionNotice {
  requestId: string;
  tenant: string;
  status: "succeeded" | "failed";
}

/**
 * Names derived from one installation prefix (normally the namespace), so tests and several
 * installations can share one broker and one Redis.
 */
export function names(prefix: string) {
  const base = `turnpike.${prefix}`;
  const shared = {
    resultsQueue: `${base}.results`,
    deadLetterQueue: `${base}.dead-letter`,
    deadTaskQueue: `${base}.dead-tasks`,
  };
  return {
    /** Durable quorum queue of one InferenceModel. */
    modelQueue: (model: string) => `${base}.model.${model}`,
    /** Durable quorum queue the collector consumes. */
    resultsQueue: shared.resultsQueue,
    /** Fanout exchange that receives dead letters of every model queue. */
    deadLetterExchange: `${base}.dlx`,
    /** Queue bound to the dead-letter exchange; a non-empty one is an alert. */
    deadLetterQueue: shared.deadLetterQueue,
    /** The collector's copy of the dead letters: tasks in it get a failed record (runtime/collector/dead-task.ts). */
    deadTaskQueue: shared.deadTaskQueue,
    /** Every installation-wide queue (model queues aside), e.g. for cleaning up. */
    sharedQueues: Object.values(shared),
    /** Redis pub/sub channel that carries CompletionNotice messages. */
    completionChannel: `tp:${prefix}:completions`,
    /** Redis hash of SHA-256(api key) -> tenant, written by the TenantQuota reconciler. */
    apiKeyIndex: `tp:${prefix}:apikeys`,
  };
}

/** Redis keys of one tenant; the `{...}` hash tag keeps them in one Redis Cluster slot. */
export function tenantKeys(prefix: string, tenant: string) {
  const tag = `tp:{${prefix}/${tenant}}`;
  return {
    /** Hash: tokensPerDay, tokensPerMinute, requestsPerMinute, concurrentRequests. */
    limits: `${tag}:limits`,
    tokensDay: (day: string) => `${tag}:tokens:d:${day}`,
    tokensMinute: (minute: number) => `${tag}:tokens:m:${minute}`,
    requestsMinute: (minute: number) => `${tag}:requests:m:${minute}`,
    inFlight: `${tag}:inflight`,
    /** Hash describing one reservation, so settle/release are idempotent and exact. */
    reservation: (requestId: string) => `${tag}:res:${requestId}`,
    /** Idempotency-Key -> request id. */
    idempotency: (key: string) => `${tag}:idem:${key}`,
    /** Hash with the accepted-but-not-finished state of a request. */
    pending: (requestId: string) => `${tag}:pending:${requestId}`,
    /** Cached result of identical input (content hash). */
    resultCache: (model: string, hash: string) => `${tag}:cache:${model}:${hash}`,
  };
}

/** Redis key locating a request's tenant, for GET /v1/requests/{id} before the record exists. */
export function requestTenantKey(prefix: string, requestId: string): string {
  return `tp:${prefix}:req:${requestId}`;
}

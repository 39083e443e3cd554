/**
 * Queue, exchange, channel and Redis key names: every name that crosses a process boundary is
 * derived here and nowhere else. The operator declares the same names the runtime uses.
 */

/**
 * Names derived from one installation prefix (normally the namespace), so tests and several
 * installations can share one broker and one Redis.
 */
/** What joins a model queue's name and a tenant's in a lane's name, and what a tenant name may hold. */
const LANE_SEPARATOR = ".tenant.";
const TENANT_NAME = "[a-z0-9-]+";
const TENANT_NAME_ONLY = new RegExp(`^${TENANT_NAME}$`);

/**
 * The model queue a tenant lane belongs to (`modelLane`'s inverse), undefined for any other queue.
 * A tenant name has no dots, so only the last separator can start a lane's suffix.
 */
export function modelQueueOfLane(queue: string): string | undefined {
  const at = queue.lastIndexOf(LANE_SEPARATOR);
  if (at <= 0 || !TENANT_NAME_ONLY.test(queue.slice(at + LANE_SEPARATOR.length))) return undefined;
  return queue.slice(0, at);
}

export function names(prefix: string) {
  const base = `turnpike.${prefix}`;
  const shared = {
    resultsQueue: `${base}.results`,
    resultBatchQueue: `${base}.result-batches`,
    deadLetterQueue: `${base}.dead-letter`,
    deadTaskQueue: `${base}.dead-tasks`,
  };
  return {
    /** Durable quorum queue of one InferenceModel (pipeline steps after the first, unknown tenants). */
    modelQueue: (model: string) => `${base}.model.${model}`,
    /**
     * One tenant's lane of a model: a durable quorum queue with the model queue's arguments that
     * holds only that tenant's requests, so the worker can choose fairly between tenants.
     */
    modelLane: (model: string, tenant: string) => `${base}.model.${model}${LANE_SEPARATOR}${tenant}`,
    /** Regex matching a model's queue and all of its lanes (KEDA sums their depth). */
    modelQueuePattern: (model: string) =>
      `^${escapeRegex(`${base}.model.${model}`)}(${escapeRegex(LANE_SEPARATOR)}${TENANT_NAME})?$`,
    /** Durable quorum queue the collector consumes. */
    resultsQueue: shared.resultsQueue,
    /**
     * Durable quorum queue the collector also consumes: messages that carry several results of one
     * worker batch (RESULT_BATCH_MESSAGE_TYPE). Its own queue so a collector that predates them never
     * receives one (it would dead-letter it); they wait for a collector that reads them.
     */
    resultBatchQueue: shared.resultBatchQueue,
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
    /** Hash: tokensPerMonth, tokensPerDay, tokensPerMinute, requestsPerMinute, concurrentRequests. */
    limits: `${tag}:limits`,
    tokensMonth: (month: string) => `${tag}:tokens:mo:${month}`,
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
    /** Sorted set of the tenant's requests to `target` waiting or running (score: enqueue time). */
    backlog: (target: string) => `${tag}:backlog:${target}`,
    /** Set by DELETE /v1/requests/{id}: a worker that receives the task skips it (runtime/worker). */
    cancel: (requestId: string) => `${tag}:cancel:${requestId}`,
    /** Cached result of identical input (content hash). */
    resultCache: (model: string, hash: string) => `${tag}:cache:${model}:${hash}`,
  };
}

/** Redis key locating a request's tenant, for GET /v1/requests/{id} before the record exists. */
export function requestTenantKey(prefix: string, requestId: string): string {
  return `tp:${prefix}:req:${requestId}`;
}

/** Escapes the characters a regular expression treats specially. */
function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * Accepting a request, in the order that keeps it exactly-once in effect: claim the
 * Idempotency-Key, mark the request queued, reserve its tokens, publish with confirms. Any failure
 * after a step undoes the earlier ones (release the tokens, forget the marker and the key), so a
 * refused request costs nothing and a retry starts clean.
 */
import type { Redis } from "ioredis";
import { PublishOutcomeUnknownError, PublishRejectedError } from "../shared/amqp.js";
import {
  names,
  tenantKeys,
  type CacheEntry,
  type CacheStore,
  type InferenceResult,
  type InferenceTask,
  type RouteStep,
  type Target,
  type WireTensor,
} from "../shared/contracts/index.js";
import type { Metrics } from "../shared/metrics.js";
import type { RuntimeConfig } from "../shared/contracts/index.js";
import type { QuotaStore, ReserveResult } from "../shared/quota/index.js";
import { ApiError } from "./errors.js";
import type { DeferredLimits } from "./request-limits.js";
import type { TaskPublisher } from "./publisher.js";
import type { RequestStates } from "./request-state.js";
import { cachedResult } from "./result-cache.js";
import { TenantBacklog } from "./tenant-backlog.js";
import { markStage } from "../shared/stage-trace.js";

/** A validated request ready to enqueue. */
export interface Submission {
  requestId: string;
  tenant: string;
  target: Target;
  route: RouteStep[];
  /** The model whose queue receives the task (the route's first model step). */
  queueModel: string;
  inputs: WireTensor[];
  parameters: Record<string, unknown>;
  inputTokens: number;
  reservedTokens: number;
  submittedAt: number;
  idempotencyKey?: string;
  /** A result-cache miss: the task carries where the collector stores the answer. */
  cache?: CacheStore;
  /** A result-cache hit: its result goes to the results queue instead of a task to the model's. */
  cachedAnswer?: { entry: CacheEntry; charge: "none" | "tokens" };
  /** This gateway's own queue, when it waits for the result there (see StreamHub). */
  replyTo?: string;
  /**
   * Skip the "queued" marker: a synchronous caller learns the id only with its answer, and the
   * route writes the marker itself if that answer is a timeout. Ignored with an Idempotency-Key.
   */
  deferMark?: boolean;
  /**
   * The request's rate limits, when they go to Redis with its reservation (request-limits.ts): a
   * refusal releases what the same round trip reserved and answers 429.
   */
  limits?: DeferredLimits;
}

/** The request that now stands for the submission: new, or the first one with the same key. */
export interface SubmitOutcome {
  requestId: string;
  reused: boolean;
  /** The result this call published for a cache hit (absent when reused or not a hit). */
  cached?: InferenceResult;
}

/** What a Submitter works with. */
export interface SubmitterDeps {
  redis: Redis;
  quota: QuotaStore;
  states: RequestStates;
  publisher: TaskPublisher;
  prefix: string;
  idempotencyTtlSeconds: number;
  metrics: Metrics;
  /** The runtime config in force: the model's queue policy (its lanes) and the tenant's backlog bound. */
  config: () => RuntimeConfig;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** A request marked queued this long ago and never confirmed published lost its gateway mid-submit. */
const ORPHANED_AFTER_MS = 3_000;

/** Validates an Idempotency-Key header value (visible ASCII, at most 255 characters). */
export function checkIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const key = Array.isArray(value) ? value[0] : value;
  if (key === undefined || !IDEMPOTENCY_KEY.test(key)) {
    throw new ApiError("invalid_idempotency_key", "Idempotency-Key must be 1-255 visible ASCII characters");
  }
  return key;
}

/** The 503 for a submission that failed on an outage of Redis or RabbitMQ. */
function unavailable(cause: unknown): ApiError {
  return new ApiError(
    "service_unavailable",
    "the gateway could not enqueue the request; retry",
    { "retry-after": 2 },
    { cause },
  );
}

/** What the caller gets for a failed submission: refusals as they are, anything else a 503. */
function submitFailure(error: unknown): Error {
  return error instanceof ApiError || error instanceof PublishRejectedError ? error : unavailable(error);
}

/** The 409 for a key whose first request is still being submitted. */
function keyInUse(): ApiError {
  return new ApiError(
    "idempotency_key_in_use",
    "a request with this Idempotency-Key is being submitted; retry",
    {
      "retry-after": 1,
    },
  );
}

/** The 429 for a tenant whose own backlog on the target is full. */
function backlogFull(s: Submission): ApiError {
  return new ApiError(
    "tenant_backlog_full",
    `tenant ${s.tenant} already has its maximum of requests waiting or running for ${s.target.name} ` +
      "(TenantQuota spec.maxQueuedPerModel); retry when some have finished",
    { "retry-after": 1 },
  );
}

/** Enqueues submissions. */
export class Submitter {
  private readonly backlog: TenantBacklog;

  constructor(private readonly deps: SubmitterDeps) {
    this.backlog = new TenantBacklog(deps.redis, deps.prefix);
  }

  /** Accepts `s` or returns the request an earlier call with the same Idempotency-Key created. */
  async submit(s: Submission): Promise<SubmitOutcome> {
    const { redis, quota, states, prefix } = this.deps;
    const idemKey = s.idempotencyKey ? tenantKeys(prefix, s.tenant).idempotency(s.idempotencyKey) : undefined;
    if (idemKey) {
      // A request over its rate limit must not claim the key: the limits first, on their own.
      await s.limits?.check();
      const existing = await this.claim(idemKey, s).catch((error: unknown) => {
        // Redis failing here (e.g. it went down after the API key was checked) is an outage, not a bug.
        if (error instanceof ApiError) throw error;
        throw new ApiError(
          "service_unavailable",
          "cannot check the Idempotency-Key right now; retry",
          { "retry-after": 2 },
          { cause: error },
        );
      });
      if (existing?.orphaned) await this.enqueueAgain({ ...s, requestId: existing.id });
      if (existing) return { requestId: existing.id, reused: true };
    }
    let reserved = false;
    try {
      // These go out back to back on one connection (one round trip); SET is applied first.
      const [limits, marked, reservation, backlog] = await Promise.allSettled([
        s.limits?.check(),
        s.deferMark && !idemKey
          ? undefined
          : states.markQueued(s.requestId, s.tenant, s.target, s.submittedAt),
        quota.reserve(s.tenant, s.requestId, s.reservedTokens, s.submittedAt),
        this.backlog.admit(this.deps.config(), s),
      ]);
      reserved = reservation.status === "fulfilled" && reservation.value.ok;
      markStage(s.requestId, "g.redis");
      if (limits.status === "rejected") throw limits.reason;
      if (marked.status === "rejected") throw marked.reason;
      if (reservation.status === "rejected") throw reservation.reason;
      if (backlog.status === "rejected") throw backlog.reason;
      if (!reservation.value.ok) throw this.refusal(s, reservation.value);
      if (!backlog.value) throw backlogFull(s);
      const cached = await this.publish(s);
      // Only a retry with the same Idempotency-Key reads the mark: without a key, spare the write.
      if (idemKey) await this.markPublished(s);
      return { requestId: s.requestId, reused: false, ...(cached ? { cached } : {}) };
    } catch (error) {
      // The task may be on its queue after all. With an Idempotency-Key, keep the key, the marker
      // and the reservation: the caller's retry finds the request orphaned and enqueues it again
      // under the same id (deduplicated downstream), so it runs and is charged once. Without a key
      // there is nothing to retry into: undo, and if it does run, the collector's settle charges
      // the released reservation after all (see FINISH_LUA).
      if (error instanceof PublishOutcomeUnknownError && idemKey) throw unavailable(error);
      // Undo in reverse order; each undo is idempotent and a failing one must not hide the cause.
      if (reserved) await quota.release(s.tenant, s.requestId).catch(() => undefined);
      await this.backlog.forget(s).catch(() => undefined);
      await states.forget(s.requestId).catch(() => undefined);
      if (idemKey) await redis.del(idemKey).catch(() => undefined);
      throw submitFailure(error);
    }
  }

  /** Points the key at `next` if it still names `previous` (one atomic compare-and-set). */
  private async takeOver(idemKey: string, previous: string, next: string): Promise<boolean> {
    const swapped = await this.deps.redis.eval(
      "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3]) return 1 end return 0",
      1,
      idemKey,
      previous,
      next,
      this.deps.idempotencyTtlSeconds,
    );
    return swapped === 1;
  }

  /**
   * Tells later retries with the same Idempotency-Key that the task is on its queue. Best effort:
   * without it a retry would enqueue the request once more, which is harmless (see enqueueAgain).
   */
  private async markPublished(s: Submission): Promise<void> {
    await this.deps.states
      .markQueued(s.requestId, s.tenant, s.target, s.submittedAt, true)
      .catch(() => undefined);
  }

  /**
   * Enqueues `s` under the id of an orphaned request: one that holds its Idempotency-Key and is
   * marked queued, but whose gateway never confirmed publishing it (it died in between), so nothing
   * would ever run it and its reservation would stay held. Safe even if it was published after all:
   * reserving is idempotent per request id, and the worker and the collector dedup by it. Nothing is
   * undone on failure (the first attempt may have published): the caller gets a 503 and retries.
   */
  private async enqueueAgain(s: Submission): Promise<void> {
    const { quota, states } = this.deps;
    try {
      await states.markQueued(s.requestId, s.tenant, s.target, s.submittedAt);
      const reservation = await quota.reserve(s.tenant, s.requestId, s.reservedTokens, s.submittedAt);
      if (!reservation.ok) throw this.refusal(s, reservation);
      await this.publish(s);
    } catch (error) {
      throw submitFailure(error);
    }
    await this.markPublished(s);
  }

  /**
   * Claims the Idempotency-Key for this request (SET NX). When another request holds it, returns
   * that request's id, after checking it targets the same model or pipeline, and whether it is
   * orphaned (marked queued longer than ORPHANED_AFTER_MS ago, never confirmed published). One
   * marked more recently is still being submitted: 409 idempotency_key_in_use, retry.
   */
  private async claim(
    idemKey: string,
    s: Submission,
  ): Promise<{ id: string; orphaned: boolean } | undefined> {
    const { redis, states } = this.deps;
    for (let attempt = 0; attempt < 2; attempt++) {
      const won = await redis.set(idemKey, s.requestId, "EX", this.deps.idempotencyTtlSeconds, "NX");
      if (won === "OK") return undefined;
      const existing = await redis.get(idemKey);
      if (existing === null) continue; // expired or undone in between: try to claim again
      const state = await states.read(existing, s.tenant);
      if (!state) {
        // The first request is between claiming the key and marking itself queued, or it failed
        // and could not release the key (Redis went down during its undo). Past the grace period
        // it is the latter: take the key over (only if it still names that request), else the key
        // would refuse every retry until it expires.
        const age = this.deps.idempotencyTtlSeconds - (await redis.ttl(idemKey));
        if (age * 1000 >= ORPHANED_AFTER_MS && (await this.takeOver(idemKey, existing, s.requestId))) {
          return undefined;
        }
        throw keyInUse();
      }
      const target = state.kind === "record" ? state.record.target : state.pending.target.name;
      if (target !== s.target.name) {
        throw new ApiError(
          "idempotency_key_conflict",
          `this Idempotency-Key was used for ${target}, not ${s.target.name}; use a new key`,
        );
      }
      if (state.kind === "pending" && !state.pending.published) {
        if (Date.now() - state.pending.submittedAt >= ORPHANED_AFTER_MS)
          return { id: existing, orphaned: true };
        throw keyInUse();
      }
      return { id: existing, orphaned: false };
    }
    throw keyInUse();
  }

  private refusal(s: Submission, r: Exclude<ReserveResult, { ok: true }>): ApiError {
    if (r.reason === "unknown-tenant") {
      return new ApiError("tenant_unknown", `tenant ${s.tenant} has no quota in this installation`);
    }
    this.deps.metrics.quotaRejections.inc({ tenant: s.tenant, limit: r.limit });
    const tokenLimit =
      r.limit === "tokensPerMonth" || r.limit === "tokensPerDay" || r.limit === "tokensPerMinute";
    if (tokenLimit && s.reservedTokens > r.limitValue) {
      // Waiting would not help: the request alone needs more than the whole window allows.
      return new ApiError(
        "request_exceeds_quota",
        `the request reserves ${s.reservedTokens} tokens but ${r.limit} is ${r.limitValue}`,
        { "x-ratelimit-limit": r.limitValue },
      );
    }
    return new ApiError(
      "quota_exceeded",
      `quota ${r.limit} (${r.limitValue}) is used up; ${r.remaining} left, retry in ${r.retryAfterSeconds} s`,
      {
        "retry-after": r.retryAfterSeconds,
        "x-ratelimit-limit": r.limitValue,
        "x-ratelimit-remaining": r.remaining,
        "x-ratelimit-reset": r.retryAfterSeconds,
      },
    );
  }

  /**
   * Publishes the task to the tenant's lane of its first model (declared on first use), so the
   * worker can share the model fairly (to the model's own queue if the config does not know it);
   * or, for a cache hit, the cached result to the results queue (the collector records and settles
   * it like any other); returns that result.
   */
  private async publish(s: Submission): Promise<InferenceResult | undefined> {
    const { publisher, prefix } = this.deps;
    if (!s.cachedAnswer) {
      const model = this.deps.config().models.find((m) => m.name === s.queueModel);
      if (model) await publisher.publishToLane(model, s.tenant, this.task(s));
      else await publisher.publish(names(prefix).modelQueue(s.queueModel), this.task(s));
      return undefined;
    }
    const result = cachedResult(s);
    await publisher.publish(names(prefix).resultsQueue, result);
    return result;
  }

  private task(s: Submission): InferenceTask {
    return {
      requestId: s.requestId,
      tenant: s.tenant,
      target: s.target,
      route: s.route,
      inputs: s.inputs,
      ...(Object.keys(s.parameters).length > 0 ? { parameters: s.parameters } : {}),
      reservedTokens: s.reservedTokens,
      inputTokens: s.inputTokens,
      outputTokens: 0,
      submittedAt: s.submittedAt,
      steps: [],
      ...(s.cache ? { cache: s.cache } : {}),
      ...(s.replyTo ? { replyTo: s.replyTo } : {}),
    };
  }
}

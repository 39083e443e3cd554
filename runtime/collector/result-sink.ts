/**
 * What the collector does with a batch of parsed results, in the order that makes redelivery safe:
 * record (PostgreSQL, one statement) -> settle the quota (Redis, idempotent per request) -> store
 * answers of result-cache misses -> notify waiting gateways (Redis pub/sub, one message per batch)
 * -> count. The caller acknowledges the messages only afterwards,
 * so a crash anywhere in here redelivers the batch and every step is repeated harmlessly.
 */
import { markStage, tracing } from "../shared/stage-trace.js";
import type { Redis } from "ioredis";
import { names, tenantKeys, type CompletionNotice, type InferenceResult } from "../shared/contracts/index.js";
import { chargedTokens } from "../shared/db/charged-tokens.js";
import type { RequestRecords, StoredOutcome, UpsertOutcome } from "../shared/db/request-records.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import { retryUntilDone } from "../shared/backoff.js";
import { ResultCacheStore } from "../shared/result-cache-store.js";

/** The slice of QuotaStore (runtime/shared/quota) the collector needs. */
export interface QuotaSettler {
  settleMany(
    tenant: string,
    settlements: { requestId: string; actualTokens: number }[],
  ): Promise<("settled" | "already" | "unknown")[]>;
}

export interface ResultSinkDeps {
  records: RequestRecords;
  quota: QuotaSettler;
  redis: Redis;
  metrics: Metrics;
  prefix: string;
  log: Logger;
}

/** How one batch went: the results that can never be recorded are returned for dead-lettering. */
export interface SinkOutcome {
  recorded: InferenceResult[];
  poison: { result: InferenceResult; reason: string }[];
  inserted: number;
}

/** True for PostgreSQL data errors (class 22) and constraint violations (class 23): retrying the same rows cannot help. */
export function isDataError(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && /^2[23]/.test(code)) return true;
  }
  return false;
}

/** Records, settles and announces batches of results. */
export class ResultSink {
  private readonly channel: string;
  private readonly cache: ResultCacheStore;

  constructor(private readonly deps: ResultSinkDeps) {
    this.channel = names(deps.prefix).completionChannel;
    this.cache = new ResultCacheStore(deps.redis, deps.prefix);
  }

  /**
   * Runs the whole sequence for `results`. Outages of PostgreSQL or Redis are waited out with backoff
   * until `signal` aborts (then it throws and the caller must not acknowledge anything).
   */
  async process(results: InferenceResult[], signal: AbortSignal): Promise<SinkOutcome> {
    const { recorded, poison, outcome } = await this.record(results, signal);
    if (recorded.length > 0) {
      if (tracing) for (const r of recorded) markStage(r.requestId, "c.settle");
      await this.settle(recorded, outcome.stored, signal);
      if (tracing) for (const r of recorded) markStage(r.requestId, "c.settled");
      await this.storeInCache(recorded);
      await this.notify(recorded, outcome.stored, signal);
      this.count(recorded, outcome.inserted);
    }
    return { recorded, poison, inserted: outcome.inserted.length };
  }

  /**
   * One statement for the batch. If PostgreSQL refuses the rows themselves (a data error no retry
   * fixes), falls back to one statement per result so one bad result cannot block the others.
   */
  private async record(results: InferenceResult[], signal: AbortSignal) {
    const { records, log } = this.deps;
    const upsert = () => records.upsertResults(results);
    try {
      const outcome = await retryUntilDone("recording results", upsert, log, signal, isDataError);
      return { recorded: results, poison: [], outcome };
    } catch (error) {
      if (!isDataError(error)) throw error;
      log.warn({ err: error, batch: results.length }, "PostgreSQL refused the batch; recording one by one");
    }
    const recorded: InferenceResult[] = [];
    const poison: SinkOutcome["poison"] = [];
    const outcome: UpsertOutcome = { inserted: [], stored: new Map() };
    for (const result of results) {
      const one = () => records.upsertResults([result]);
      try {
        const single = await retryUntilDone("recording a result", one, log, signal, isDataError);
        recorded.push(result);
        outcome.inserted.push(...single.inserted);
        for (const [id, stored] of single.stored) outcome.stored.set(id, stored);
      } catch (error) {
        if (!isDataError(error)) throw error;
        poison.push({ result, reason: `PostgreSQL refused it: ${rootMessage(error)}` });
      }
    }
    return { recorded, poison, outcome };
  }

  /**
   * Settles every result of the batch, not only the newly inserted ones: after a crash between the
   * commit and the settle, the redelivered batch inserts nothing new but still owes its settlement.
   * QuotaStore.settle is idempotent ("already"), so settling twice never charges twice. The amount is
   * what the *recorded* result charges, so a re-run that produced different numbers cannot disagree
   * with the record.
   */
  private async settle(results: InferenceResult[], stored: Map<string, StoredOutcome>, signal: AbortSignal) {
    const { quota, log } = this.deps;
    // One settleMany per tenant (its keys share one hash slot): a few script calls per batch, not one per result.
    const byTenant = new Map<string, { requestId: string; actualTokens: number }[]>();
    for (const r of results) {
      const tokens = stored.get(r.requestId.toLowerCase())?.chargedTokens ?? chargedTokens(r);
      let list = byTenant.get(r.tenant);
      if (!list) byTenant.set(r.tenant, (list = []));
      list.push({ requestId: r.requestId, actualTokens: tokens });
    }
    const unknown: string[] = [];
    await Promise.all(
      [...byTenant].map(async ([tenant, settlements]) => {
        const outcomes = await retryUntilDone(
          "settling quota reservations",
          () => quota.settleMany(tenant, settlements),
          log,
          signal,
        );
        outcomes.forEach((o, i) => o === "unknown" && unknown.push(settlements[i]!.requestId));
      }),
    );
    // "unknown": no reservation (expired after two days, or a tenant removed meanwhile). Nothing to
    // refund; the record is still the truth about what the request consumed.
    if (unknown.length > 0)
      log.warn({ requestIds: unknown.slice(0, 20), count: unknown.length }, "no reservation to settle");
  }

  /**
   * Stores the answers of result-cache misses (tasks that carried a cache key). Before the notice, so
   * a caller who got the answer and asks again hits. Best effort: the record and the quota are
   * already right, a failed write only costs a later hit, so it is logged and never retried.
   */
  private async storeInCache(results: InferenceResult[]) {
    const cacheable = results.filter((r) => r.cache && r.status === "succeeded");
    if (cacheable.length === 0) return;
    await Promise.all(
      cacheable.map((r) =>
        this.cache.store(r).catch((error: unknown) => {
          this.deps.log.warn({ err: error, requestId: r.requestId }, "could not store a cached answer");
        }),
      ),
    );
  }

  /**
   * One PUBLISH carrying the batch's CompletionNotices as one JSON array (one message for Redis to
   * fan out to every gateway per batch, not one per result; duplicates after a redelivery are
   * harmless: a gateway that already answered ignores them), pipelined with taking each request out
   * of its tenant's backlog (runtime/gateway/tenant-backlog.ts; removing twice is harmless too). The request's tenant key is left to
   * expire: the gateway may still use it to authorise GET /v1/requests/{id}.
   */
  private async notify(results: InferenceResult[], stored: Map<string, StoredOutcome>, signal: AbortSignal) {
    const { redis, log } = this.deps;
    const notices: CompletionNotice[] = results.map((r) => ({
      requestId: r.requestId,
      tenant: r.tenant,
      status: stored.get(r.requestId.toLowerCase())?.status === "failed" ? "failed" : r.status,
    }));
    const message = JSON.stringify(notices);
    await retryUntilDone(
      "publishing completion notices",
      async () => {
        const pipeline = redis.pipeline();
        pipeline.publish(this.channel, message);
        // One ZREM per backlog (tenant and model), not one per result.
        const backlogs = new Map<string, string[]>();
        const keysOf = new Map<string, ReturnType<typeof tenantKeys>>();
        for (const r of results) {
          let keys = keysOf.get(r.tenant);
          if (!keys) keysOf.set(r.tenant, (keys = tenantKeys(this.deps.prefix, r.tenant)));
          const key = keys.backlog(r.target.name);
          const ids = backlogs.get(key);
          if (ids) ids.push(r.requestId);
          else backlogs.set(key, [r.requestId]);
        }
        for (const [key, ids] of backlogs) pipeline.zrem(key, ...ids);
        const replies = (await pipeline.exec()) ?? [];
        const failed = replies.find(([error]) => error);
        if (failed?.[0]) throw failed[0];
      },
      log,
      signal,
    );
  }

  /** Metrics count each request once: only the rows this batch inserted. */
  private count(results: InferenceResult[], insertedIds: string[]) {
    const { metrics } = this.deps;
    const inserted = new Set(insertedIds);
    const seen = new Set<string>();
    for (const r of results) {
      const id = r.requestId.toLowerCase();
      if (!inserted.has(id) || seen.has(id)) continue;
      seen.add(id);
      metrics.resultsRecorded.inc({ status: r.status });
      const tokens = chargedTokens(r);
      if (tokens > 0) metrics.tokensProcessed.inc({ model: r.target.name, tenant: r.tenant }, tokens);
    }
  }
}

/** The innermost message of an error chain (the driver's own words). */
function rootMessage(error: unknown): string {
  let e: unknown = error;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

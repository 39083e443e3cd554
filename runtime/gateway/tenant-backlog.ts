/**
 * Per-tenant back-pressure (TenantQuota spec.maxQueuedPerModel): the tenant's requests waiting or
 * running for one model or pipeline are members of a Redis sorted set (names.tenantKeys().backlog),
 * added here before the publish and removed by the collector when the request's result (or its
 * dead letter) is recorded. One more than the bound is refused with 429 tenant_backlog_full.
 *
 * Exact per request id (adding twice or removing twice changes nothing), atomic across gateway
 * replicas. An entry whose removal never came (e.g. a message that expired without dead-lettering)
 * is pruned once it is older than the model's message TTL plus a margin for running.
 */
import type { Redis } from "ioredis";
import { tenantKeys, type RuntimeConfig } from "../shared/contracts/index.js";
import type { Submission } from "./submit.js";

/** KEYS: the backlog set. ARGV: request id, now (ms), bound, prune before (ms), key ttl (ms). */
const ADMIT_LUA = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`;

/** How long a request may run after it left the queue, for pruning forgotten entries. */
const RUNNING_MARGIN_MS = 10 * 60_000;

interface BacklogCommands {
  turnpikeBacklogAdmit(...args: (string | number)[]): Promise<number>;
}

/** See the module comment. */
export class TenantBacklog {
  private readonly redis: Redis & BacklogCommands;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    // EVALSHA (EVAL after a SCRIPT FLUSH) instead of sending the script's text with every request.
    redis.defineCommand("turnpikeBacklogAdmit", { numberOfKeys: 1, lua: ADMIT_LUA });
    this.redis = redis as Redis & BacklogCommands;
  }

  /** Adds the request to its tenant's backlog; false when the backlog is full. No bound: true, nothing stored. */
  async admit(config: RuntimeConfig, s: Submission): Promise<boolean> {
    const bound = config.tenants.find((t) => t.name === s.tenant)?.maxQueuedPerModel;
    if (bound === undefined) return true;
    const model = config.models.find((m) => m.name === s.queueModel);
    const keepMs = (model?.queue.messageTtlSeconds ?? 3600) * 1000 + RUNNING_MARGIN_MS;
    const now = Date.now();
    const key = tenantKeys(this.prefix, s.tenant).backlog(s.target.name);
    const admitted = await this.redis.turnpikeBacklogAdmit(
      key,
      s.requestId,
      now,
      bound,
      now - keepMs,
      keepMs,
    );
    return admitted === 1;
  }

  /** Removes the request again (a submission that failed after admit). */
  async forget(s: Submission): Promise<void> {
    await this.redis.zrem(tenantKeys(this.prefix, s.tenant).backlog(s.target.name), s.requestId);
  }
}

/**
 * QuotaStore: a tenant's limits, API-key hashes and token/request windows in Redis, with atomic
 * reserve / settle / release (Lua, see scripts.ts). Exact under any concurrency and any number of
 * processes sharing one Redis: a window is checked and charged inside one script.
 *
 * Settlement policy: settle charges the actual tokens, capped at what was reserved, and refunds
 * the rest. Charging beyond the reservation could push a window past its limit after the fact, so
 * the excess (if a model ever produces more than maxOutputTokens) is recorded in the request record
 * by the collector but not charged to the quota windows.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { names, tenantKeys } from "../contracts/index.js";
import { FINISH_LUA, FINISH_MANY_LUA, RESERVE_LUA, SET_API_KEYS_LUA } from "./scripts.js";
import {
  QUOTA_LIMIT_NAMES,
  QUOTA_TTL_SECONDS,
  retryAfterSeconds,
  windowsAt,
  type QuotaLimitName,
} from "./windows.js";

export type { QuotaLimitName } from "./windows.js";

/** Limits of one tenant; an absent limit is unlimited. */
export interface TenantLimits {
  tokensPerMonth?: number;
  tokensPerDay?: number;
  tokensPerMinute?: number;
  requestsPerMinute?: number;
  concurrentRequests?: number;
}

/** Outcome of a reservation; a refusal names the limit and when to retry. */
export type ReserveResult =
  | { ok: true }
  | { ok: false; reason: "unknown-tenant" }
  | {
      ok: false;
      reason: "limit";
      limit: QuotaLimitName;
      limitValue: number;
      remaining: number;
      retryAfterSeconds: number;
    };

/** Current usage of one tenant, as counted in Redis. */
export interface TenantUsage {
  tokensThisMonth: number;
  tokensToday: number;
  tokensThisMinute: number;
  requestsThisMinute: number;
  inFlight: number;
  limits: TenantLimits;
}

/** Options of a QuotaStore. */
export interface QuotaStoreOptions {
  /**
   * An in-flight request older than this no longer counts against concurrentRequests: its process
   * died between reserve and settle. Longer than a request can live (queue TTL + processing).
   */
  inFlightMaxAgeMs?: number;
}

/** SHA-256 hex of an API key: the only form a key is stored or compared in. */
export function hashApiKey(apiKey: string): string {
  return createHash("sha256").update(apiKey, "utf8").digest("hex");
}

type ScriptReply = [string, ...(string | number)[]];
interface QuotaCommands {
  turnpikeReserve(...args: (string | number)[]): Promise<ScriptReply>;
  turnpikeFinish(...args: (string | number)[]): Promise<string>;
  turnpikeFinishMany(numberOfKeys: number, ...args: (string | number)[]): Promise<string[]>;
  turnpikeSetApiKeys(...args: string[]): Promise<number>;
}

const DEFAULT_IN_FLIGHT_MAX_AGE_MS = 6 * 3_600_000;
/** Reservations per settleMany script call: bounds how long one call holds Redis (~10 commands each). */
const SETTLE_CHUNK = 128;

/** A reservation's state and the window keys it charged, as FINISH_LUA's callers read them. */
const RESERVATION_WINDOW_FIELDS = ["state", "dayKey", "minuteKey", "requestsKey", "monthKey"] as const;

/** FINISH_LUA's six keys from a reservation's window fields (RESERVATION_WINDOW_FIELDS after state). */
function finishKeys(
  keys: ReturnType<typeof tenantKeys>,
  resKey: string,
  [dayKey, minuteKey, requestsKey, monthKey]: (string | null | undefined)[],
): string[] {
  return [
    resKey,
    dayKey ?? "",
    minuteKey ?? "",
    requestsKey ?? "",
    keys.inFlight,
    // A reservation from before the month window names none; any key of the tenant fills the slot.
    monthKey ?? keys.limits,
  ];
}

/** Quota state of every tenant of one installation prefix. */
export class QuotaStore {
  private readonly redis: Redis & QuotaCommands;
  private readonly inFlightMaxAgeMs: number;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    options: QuotaStoreOptions = {},
  ) {
    this.inFlightMaxAgeMs = options.inFlightMaxAgeMs ?? DEFAULT_IN_FLIGHT_MAX_AGE_MS;
    // defineCommand is idempotent per client; EVALSHA with an EVAL fallback after SCRIPT FLUSH.
    redis.defineCommand("turnpikeReserve", { numberOfKeys: 7, lua: RESERVE_LUA });
    redis.defineCommand("turnpikeFinish", { numberOfKeys: 6, lua: FINISH_LUA });
    // Its key count varies with the batch: given as the first argument of each call.
    redis.defineCommand("turnpikeFinishMany", { lua: FINISH_MANY_LUA });
    redis.defineCommand("turnpikeSetApiKeys", { numberOfKeys: 1, lua: SET_API_KEYS_LUA });
    this.redis = redis as Redis & QuotaCommands;
  }

  /**
   * Writes a tenant's limits and API-key hashes, replacing both (idempotent). Hashes of this
   * tenant that are not in `apiKeyHashes` stop resolving to it.
   */
  async writeTenant(tenant: string, limits: TenantLimits, apiKeyHashes: string[]): Promise<void> {
    const keys = tenantKeys(this.prefix, tenant);
    const fields: Record<string, string> = { tenant };
    for (const name of QUOTA_LIMIT_NAMES) {
      const value = limits[name];
      if (value !== undefined) {
        if (!Number.isInteger(value) || value < 0) {
          throw new Error(`tenant ${tenant}: limit ${name} must be a non-negative integer, got ${value}`);
        }
        fields[name] = String(value);
      }
    }
    // The `tenant` field marks the tenant as known even when it has no limit at all.
    await this.redis.multi().del(keys.limits).hset(keys.limits, fields).exec();
    await this.redis.turnpikeSetApiKeys(names(this.prefix).apiKeyIndex, tenant, ...apiKeyHashes);
  }

  /** Forgets a tenant: its limits, API keys and in-flight set (window counters simply expire). */
  async removeTenant(tenant: string): Promise<void> {
    const keys = tenantKeys(this.prefix, tenant);
    await this.redis.turnpikeSetApiKeys(names(this.prefix).apiKeyIndex, tenant);
    await this.redis.del(keys.limits, keys.inFlight);
  }

  /** Resolves an API key to its tenant by the key's hash; undefined when the key is unknown. */
  async tenantForApiKey(apiKey: string): Promise<string | undefined> {
    // Only the SHA-256 is looked up: no comparison of the secret itself happens anywhere.
    const tenant = await this.redis.hget(names(this.prefix).apiKeyIndex, hashApiKey(apiKey));
    return tenant ?? undefined;
  }

  /**
   * Reserves `tokens` and one request for `requestId`, checking every configured window first.
   * Reserving the same request id again succeeds without charging twice.
   */
  async reserve(
    tenant: string,
    requestId: string,
    tokens: number,
    nowMs = Date.now(),
  ): Promise<ReserveResult> {
    if (!Number.isInteger(tokens) || tokens < 0) {
      throw new Error(`reserve ${requestId}: tokens must be a non-negative integer, got ${tokens}`);
    }
    const keys = tenantKeys(this.prefix, tenant);
    const w = windowsAt(nowMs);
    const reply = await this.redis.turnpikeReserve(
      keys.limits,
      keys.tokensDay(w.day),
      keys.tokensMinute(w.minute),
      keys.requestsMinute(w.minute),
      keys.inFlight,
      keys.reservation(requestId),
      keys.tokensMonth(w.month),
      requestId,
      tokens,
      nowMs,
      this.inFlightMaxAgeMs,
      QUOTA_TTL_SECONDS.day,
      QUOTA_TTL_SECONDS.minute,
      QUOTA_TTL_SECONDS.reservation,
      QUOTA_TTL_SECONDS.inFlight,
      QUOTA_TTL_SECONDS.month,
    );
    const [kind] = reply;
    if (kind === "ok" || kind === "dup") return { ok: true };
    if (kind === "unknown") return { ok: false, reason: "unknown-tenant" };
    const limit = reply[1] as QuotaLimitName;
    const limitValue = Number(reply[2]);
    const used = Number(reply[3]);
    return {
      ok: false,
      reason: "limit",
      limit,
      limitValue,
      remaining: Math.max(0, limitValue - used),
      retryAfterSeconds: retryAfterSeconds(limit, w),
    };
  }

  /**
   * Charges the actual tokens of a finished request (capped at the reservation), refunds the
   * rest and ends its in-flight slot. Idempotent: a second settle is "already". A settle after a
   * release charges the request after all (it ran although its gateway gave up on it), once.
   */
  async settle(
    tenant: string,
    requestId: string,
    actualTokens: number,
  ): Promise<"settled" | "already" | "unknown"> {
    if (!Number.isFinite(actualTokens) || actualTokens < 0) {
      throw new Error(`settle ${requestId}: actualTokens must be a non-negative number, got ${actualTokens}`);
    }
    return (await this.finish("settle", tenant, requestId, Math.round(actualTokens))) as
      | "settled"
      | "already"
      | "unknown";
  }

  /**
   * settle for many requests of one tenant: the reservations are read in one pipelined round trip
   * and settled by one script call per SETTLE_CHUNK of them, each by the same rules as settle (same
   * script body), so the outcome of every request is the one settle would give it. Results in order.
   */
  async settleMany(
    tenant: string,
    settlements: { requestId: string; actualTokens: number }[],
  ): Promise<("settled" | "already" | "unknown")[]> {
    for (const { requestId, actualTokens } of settlements) {
      if (!Number.isFinite(actualTokens) || actualTokens < 0) {
        throw new Error(
          `settle ${requestId}: actualTokens must be a non-negative number, got ${actualTokens}`,
        );
      }
    }
    const out: ("settled" | "already" | "unknown")[] = [];
    for (let i = 0; i < settlements.length; i += SETTLE_CHUNK) {
      out.push(...(await this.settleChunk(tenant, settlements.slice(i, i + SETTLE_CHUNK))));
    }
    return out;
  }

  private async settleChunk(tenant: string, settlements: { requestId: string; actualTokens: number }[]) {
    const keys = tenantKeys(this.prefix, tenant);
    const out = new Array<"settled" | "already" | "unknown">(settlements.length);
    let pending = settlements.map((s, index) => ({ ...s, index }));
    for (let attempt = 0; attempt < 3 && pending.length > 0; attempt++) {
      const read = this.redis.pipeline();
      for (const s of pending) read.hmget(keys.reservation(s.requestId), ...RESERVATION_WINDOW_FIELDS);
      const replies = (await read.exec()) ?? [];
      const scriptKeys: string[] = [];
      const scriptArgs: (string | number)[] = [];
      const sent: typeof pending = [];
      pending.forEach((s, i) => {
        const [error, fields] = replies[i] ?? [new Error("no reply")];
        if (error) throw error;
        const [state, ...windows] = fields as (string | null)[];
        if (state === null || state === undefined) {
          out[s.index] = "unknown";
          return;
        }
        // Same keys as finish() passes; the script re-checks them against the reservation atomically.
        scriptKeys.push(...finishKeys(keys, keys.reservation(s.requestId), windows));
        scriptArgs.push(s.requestId, Math.round(s.actualTokens));
        sent.push(s);
      });
      if (sent.length === 0) return out;
      const results = await this.redis.turnpikeFinishMany(
        scriptKeys.length,
        ...scriptKeys,
        "settle",
        ...scriptArgs,
      );
      pending = sent.filter((s, i) => {
        const result = results[i];
        if (result === "mismatch") return true;
        out[s.index] = result as "settled" | "already" | "unknown";
        return false;
      });
    }
    if (pending.length > 0)
      throw new Error(`settle ${pending[0]!.requestId}: the reservation kept changing under us`);
    return out;
  }

  /** Refunds a reservation entirely (the request never ran, e.g. its queue was full). Idempotent. */
  async release(tenant: string, requestId: string): Promise<"released" | "already" | "unknown"> {
    return (await this.finish("release", tenant, requestId, 0)) as "released" | "already" | "unknown";
  }

  /** Usage in the windows current at `nowMs`, with the configured limits. */
  async usage(tenant: string, nowMs = Date.now()): Promise<TenantUsage> {
    const keys = tenantKeys(this.prefix, tenant);
    const w = windowsAt(nowMs);
    const [limits, counters, inFlight] = await Promise.all([
      this.redis.hgetall(keys.limits),
      this.redis.mget(
        keys.tokensDay(w.day),
        keys.tokensMinute(w.minute),
        keys.requestsMinute(w.minute),
        keys.tokensMonth(w.month),
      ),
      this.redis.zcount(keys.inFlight, nowMs - this.inFlightMaxAgeMs, "+inf"),
    ]);
    return {
      tokensThisMonth: Number(counters[3] ?? 0),
      tokensToday: Number(counters[0] ?? 0),
      tokensThisMinute: Number(counters[1] ?? 0),
      requestsThisMinute: Number(counters[2] ?? 0),
      inFlight,
      limits: parseLimits(limits),
    };
  }

  /** Up to `max` request ids in flight (reserved, not yet settled), oldest first, with when each was reserved. */
  async inFlightRequests(
    tenant: string,
    max: number,
    nowMs = Date.now(),
  ): Promise<{ id: string; reservedAt: number }[]> {
    const flat = await this.redis.zrangebyscore(
      tenantKeys(this.prefix, tenant).inFlight,
      nowMs - this.inFlightMaxAgeMs,
      "+inf",
      "WITHSCORES",
      "LIMIT",
      0,
      max,
    );
    const out: { id: string; reservedAt: number }[] = [];
    for (let i = 0; i + 1 < flat.length; i += 2) out.push({ id: flat[i]!, reservedAt: Number(flat[i + 1]) });
    return out;
  }

  /**
   * Reads which windows the reservation charged (it stores their key names), then runs the
   * script with exactly those keys; the script re-checks state and keys atomically.
   */
  private async finish(mode: "settle" | "release", tenant: string, requestId: string, actual: number) {
    const keys = tenantKeys(this.prefix, tenant);
    const resKey = keys.reservation(requestId);
    for (let attempt = 0; attempt < 3; attempt++) {
      const [state, ...windows] = await this.redis.hmget(resKey, ...RESERVATION_WINDOW_FIELDS);
      // Whether the state allows `mode` is the script's call alone (it re-checks atomically anyway).
      if (state === null) return "unknown";
      const result = await this.redis.turnpikeFinish(
        ...finishKeys(keys, resKey, windows),
        mode,
        requestId,
        actual,
      );
      if (result !== "mismatch") return result;
    }
    throw new Error(`${mode} ${requestId}: the reservation kept changing under us`);
  }
}

/** Parses the limits hash; fields that are missing or not numbers are unlimited. */
function parseLimits(hash: Record<string, string>): TenantLimits {
  const limits: TenantLimits = {};
  for (const name of QUOTA_LIMIT_NAMES) {
    const raw = hash[name];
    if (raw !== undefined && raw !== "" && Number.isFinite(Number(raw))) limits[name] = Number(raw);
  }
  return limits;
}

/**
 * The result cache in Redis (InferenceModel spec.cache): the gateway reads entries, the collector
 * writes the answer of each cache miss once it is recorded. One model's entries and their index
 * share a hash tag (cacheKeys), so the write script is atomic on Redis Cluster too.
 *
 * Size rule: each entry lives `ttlSeconds`; a model holds at most `maxEntries` of them (the index
 * scores entries by write time and each write evicts the oldest beyond the bound); an answer whose
 * JSON is larger than `maxEntryBytes` is not cached at all.
 */
import type { Redis } from "ioredis";
import {
  cacheKeys,
  GENERATION_OUTPUTS,
  type CacheEntry,
  type CacheStore,
  type InferenceResult,
} from "./contracts/index.js";

/**
 * KEYS: entry, index. ARGV: value, ttlSeconds, nowMs, maxEntries, entry key.
 * Drops index members older than the TTL (their entries have expired), writes the entry, then
 * evicts the oldest members (and their entries) beyond maxEntries. Returns how many it evicted.
 */
const STORE_LUA = `
local ttl = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local max = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - ttl * 1000)
redis.call('SET', KEYS[1], ARGV[1], 'EX', ttl)
redis.call('ZADD', KEYS[2], now, ARGV[5])
redis.call('EXPIRE', KEYS[2], ttl)
local over = redis.call('ZCARD', KEYS[2]) - max
if over <= 0 then return 0 end
local prefix = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[5]))
local oldest = redis.call('ZPOPMIN', KEYS[2], over)
for i = 1, #oldest, 2 do redis.call('DEL', prefix .. oldest[i]) end
return over
`;

/** Why an answer was or was not stored. */
export type StoreOutcome = "stored" | "too-large" | "not-cacheable";

/** Reads and writes one installation's cached answers. */
export class ResultCacheStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  /** The cached answer of `key` for `model`, if any. */
  async get(model: string, key: string): Promise<CacheEntry | undefined> {
    const raw = await this.redis.get(cacheKeys(this.prefix, model).entry(key));
    if (raw === null) return undefined;
    try {
      return JSON.parse(raw) as CacheEntry;
    } catch {
      return undefined; // unreadable entries act as misses; the next answer overwrites them
    }
  }

  /**
   * Stores a miss's succeeded result under the key its task carried. Not cached: failures, hits
   * themselves, generations a client cut short (finish reason `cancelled`), answers over the byte bound.
   */
  async store(result: InferenceResult, now = Date.now()): Promise<StoreOutcome> {
    const settings: CacheStore | undefined = result.cache;
    if (!settings || result.status !== "succeeded" || result.cached || cancelled(result)) {
      return "not-cacheable";
    }
    const entry: CacheEntry = {
      outputs: result.outputs ?? [],
      inputTokens: result.inputTokens,
      outputTokens: result.outputTokens,
    };
    const value = JSON.stringify(entry);
    if (Buffer.byteLength(value, "utf8") > settings.maxEntryBytes) return "too-large";
    const keys = cacheKeys(this.prefix, result.target.name);
    await this.redis.eval(
      STORE_LUA,
      2,
      keys.entry(settings.key),
      keys.index,
      value,
      settings.ttlSeconds,
      now,
      settings.maxEntries,
      settings.key,
    );
    return "stored";
  }

  /** Entries a model's index holds now (for tests and status). */
  async size(model: string): Promise<number> {
    return this.redis.zcard(cacheKeys(this.prefix, model).index);
  }
}

/** True for a generation the client cut short: not the whole answer, never cached. */
function cancelled(result: InferenceResult): boolean {
  const reason = result.outputs?.find((o) => o.name === GENERATION_OUTPUTS.finishReason);
  if (!reason) return false;
  const data = Array.isArray(reason.data) ? reason.data[0] : reason.data;
  return data !== undefined && Buffer.from(data, "base64").toString("utf8") === "cancelled";
}

/**
 * The result cache contract: what the operator renders for a model with `spec.cache.enabled`, what a
 * task carries so the collector can store its answer, and the Redis names of the entries. Written
 * once, used by the operator (CRD enums, runtime config), the gateway (look-up, hits) and the
 * collector (stores answers of misses).
 */
import { z } from "zod";

/** What a hit costs: `none` (0 tokens) or `tokens` (the input + output tokens of the cached answer). */
export const CACHE_CHARGES = ["none", "tokens"] as const;
/** Who shares entries: `tenant` (each tenant its own) or `model` (every tenant allowed the model). */
export const CACHE_SCOPES = ["tenant", "model"] as const;

export const CACHE_DEFAULTS = {
  ttlSeconds: 3600,
  maxEntries: 10_000,
  maxEntryBytes: 65_536,
  charge: "none",
  scope: "tenant",
} as const;

/** One model's cache settings in the runtime config (present only when the cache is enabled). */
export const modelCacheSchema = z.object({
  /**
   * Changes whenever what decides an answer changes (the operator renders a hash of the spec
   * without spec.replicas and spec.cache): part of every key, so older entries are unreachable.
   */
  generation: z.string().min(1).max(64),
  ttlSeconds: z.number().int().min(1).max(2_592_000).default(CACHE_DEFAULTS.ttlSeconds),
  maxEntries: z.number().int().min(1).max(1_000_000).default(CACHE_DEFAULTS.maxEntries),
  maxEntryBytes: z.number().int().min(1).max(16_777_216).default(CACHE_DEFAULTS.maxEntryBytes),
  charge: z.enum(CACHE_CHARGES).default(CACHE_DEFAULTS.charge),
  scope: z.enum(CACHE_SCOPES).default(CACHE_DEFAULTS.scope),
});

/**
 * What a task of a cache miss carries (and its result carries on) so the collector can store the
 * answer once it is recorded, without reading the runtime config.
 */
export const cacheStoreSchema = z.object({
  /** SHA-256 (hex) of the entry: see the gateway's result-cache key. */
  key: z.string().regex(/^[0-9a-f]{64}$/),
  ttlSeconds: z.number().int().min(1),
  maxEntries: z.number().int().min(1),
  maxEntryBytes: z.number().int().min(1),
});

/** A hit's result is flagged with what it charges (see chargedTokens()). */
export const cachedFlagSchema = z.object({ charge: z.enum(CACHE_CHARGES) });

/** What an entry holds: the succeeded result's outputs and the token counts of the original answer. */
export interface CacheEntry {
  outputs: { name: string; datatype: string; shape: number[]; data: string | string[] }[];
  inputTokens: number;
  outputTokens: number;
}

export type ModelCache = z.infer<typeof modelCacheSchema>;
export type CacheStore = z.infer<typeof cacheStoreSchema>;

/**
 * Redis keys of one model's cache. The hash tag keeps a model's entries and its index in one Redis
 * Cluster slot, so the store script touches them atomically.
 */
export function cacheKeys(prefix: string, model: string) {
  const tag = `tp:{${prefix}/cache/${model}}`;
  return {
    /** String: the JSON {@link CacheEntry}, with the model's TTL. */
    entry: (key: string) => `${tag}:e:${key}`,
    /** Sorted set of entry keys scored by write time: the size bound evicts the oldest first. */
    index: `${tag}:index`,
  };
}

/** JSON with object keys sorted at every level, so equal values hash equal. Pure. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value ?? null);
}

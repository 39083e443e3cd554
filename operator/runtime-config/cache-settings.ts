/**
 * The runtime config's `cache` of one InferenceModel (pure): present only with spec.cache.enabled,
 * with the cache generation every entry key includes.
 */
import type { InferenceModel } from "../api/index.js";
import { CACHE_DEFAULTS, type ModelCache } from "../../runtime/shared/contracts/index.js";
import { hashOf } from "../shared/children.js";

/**
 * A hash of the resource's uid and its spec without spec.replicas (written by the autoscaler) and
 * spec.cache (its own settings): any other spec change, or a model deleted and created again, gives
 * a new generation and so makes the older entries unreachable.
 */
export function cacheGeneration(model: InferenceModel): string {
  const { replicas: _replicas, cache: _cache, ...rest } = model.spec ?? {};
  return hashOf({ uid: model.metadata?.uid ?? "", spec: rest });
}

/** The model's cache settings for the runtime, or undefined when the cache is off. */
export function cacheSettings(model: InferenceModel): ModelCache | undefined {
  const cache = model.spec?.cache;
  if (!cache?.enabled) return undefined;
  return {
    generation: cacheGeneration(model),
    ttlSeconds: cache.ttlSeconds ?? CACHE_DEFAULTS.ttlSeconds,
    maxEntries: cache.maxEntries ?? CACHE_DEFAULTS.maxEntries,
    maxEntryBytes: cache.maxEntryBytes ?? CACHE_DEFAULTS.maxEntryBytes,
    charge: (cache.charge ?? CACHE_DEFAULTS.charge) as ModelCache["charge"],
    scope: (cache.scope ?? CACHE_DEFAULTS.scope) as ModelCache["scope"],
  };
}

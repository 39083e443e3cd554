/**
 * InferenceModel `spec.cache`: the per-model result cache. Split out of inference-model.schema.ts
 * to keep files small; the runtime side is runtime/gateway/result-cache.ts (look-up, hits) and
 * runtime/shared/result-cache-store.ts (entries, size bound).
 */
import { CACHE_CHARGES, CACHE_DEFAULTS, CACHE_SCOPES } from "../../runtime/shared/contracts/index.js";
import { bool, int32, obj, rule, str, type Schema } from "./common.schema.js";

/** The most Redis memory one model's entries may take: maxEntries x maxEntryBytes. */
export const CACHE_MAX_TOTAL_BYTES = 4 * 1024 * 1024 * 1024;

export const cache: Schema = obj(
  "Result cache (opt-in): answers of deterministic requests are kept in Redis and repeated requests " +
    "are answered by the gateway without the model's queue. Deterministic means every request to an " +
    "ONNX model, and a generation (gguf) with temperature 0 and a seed; other generations are never " +
    "cached. Pipelines are not cached. The key is a SHA-256 of the model's name, its cache generation, " +
    "the tenant (scope `tenant`), the input tensors or the generation request, and the parameters. The " +
    "cache generation is a hash of the resource's uid and its spec without spec.replicas and " +
    "spec.cache, so any other spec change makes every older entry unreachable (they expire after " +
    "ttlSeconds); a new file behind an unchanged URI is not noticed. A hit still passes the tenant's " +
    "quota as one request (requests per minute, concurrency), is recorded in PostgreSQL with " +
    "`cached = true` and is charged as `charge` says. The answer of a miss is stored by the collector " +
    "once the result is recorded; failures and generations cut short by the client are not stored.",
  {
    enabled: bool("Turns the cache on. Default off.", { default: false }),
    ttlSeconds: int32("Seconds an answer stays in the cache after it was stored.", {
      minimum: 1,
      maximum: 2_592_000,
      default: CACHE_DEFAULTS.ttlSeconds,
    }),
    maxEntries: int32(
      "Most answers kept for this model (all tenants together); each new answer beyond it evicts the " +
        "oldest stored.",
      { minimum: 1, maximum: 1_000_000, default: CACHE_DEFAULTS.maxEntries },
    ),
    maxEntryBytes: int32(
      "Largest answer (its JSON: output tensors and token counts) that is cached; larger answers are " +
        "served but never stored.",
      { minimum: 1, maximum: 16_777_216, default: CACHE_DEFAULTS.maxEntryBytes },
    ),
    charge: str(
      "What a hit costs the tenant: `none` (0 tokens; it still counts as a request) or `tokens` (the " +
        "input and output tokens of the cached answer, as if the model had run again).",
      { enum: [...CACHE_CHARGES], default: CACHE_DEFAULTS.charge },
    ),
    scope: str(
      "Who shares answers: `tenant` (each tenant only hits its own answers) or `model` (every tenant " +
        "allowed to call the model shares them; a tenant can then tell from a fast answer that " +
        "another asked the same).",
      { enum: [...CACHE_SCOPES], default: CACHE_DEFAULTS.scope },
    ),
  },
  {
    "x-kubernetes-validations": [
      rule(
        "!has(self.maxEntries) || !has(self.maxEntryBytes) || " +
          `self.maxEntries * self.maxEntryBytes <= ${CACHE_MAX_TOTAL_BYTES}`,
        "cache.maxEntries x cache.maxEntryBytes must be at most 4 GiB (the Redis memory one model's cache may take)",
      ),
    ],
  },
);

/**
 * The gateway's side of the result cache (InferenceModel spec.cache). For a deterministic request
 * to a model with the cache on it computes the entry key: SHA-256 over the model's name and cache
 * generation, the tenant (scope `tenant`), the canonical input and the parameters. A hit is
 * answered here: the request still passes the quota (reserving what the spec's `charge` says) and
 * its result, flagged `cached`, goes straight to the results queue, so the collector records it,
 * settles it and announces it exactly like any other. A miss carries the key in its task; the
 * collector stores the answer once it is recorded (runtime/shared/result-cache-store.ts).
 */
import { createHash } from "node:crypto";
import {
  canonicalJson,
  type CacheEntry,
  type CacheStore,
  type GenerationRequest,
  type InferenceResult,
  type ModelConfig,
  type WireTensor,
} from "../shared/contracts/index.js";
import type { RequestRecord } from "../shared/db/index.js";
import { toBase64Tensor, type Base64Tensor } from "../shared/tensors.js";
import type { GatewayContext } from "./context.js";
import type { Submission } from "./submit.js";
import type { FinalState } from "./views.js";

/** A cacheable request: its key, and the cached answer when there is one. */
export interface CacheLookup {
  model: string;
  charge: "none" | "tokens";
  /** What a miss's task carries so the collector can store the answer. */
  store: CacheStore;
  hit?: CacheEntry;
}

/**
 * Only requests whose answer cannot vary are cached: every ONNX model's (a pure function of its
 * input), and a generation's at temperature 0 with a fixed seed.
 */
export function isDeterministic(model: ModelConfig, generation?: GenerationRequest): boolean {
  if (model.format !== "gguf") return true;
  return generation !== undefined && generation.temperature === 0 && generation.seed !== undefined;
}

/** The entry key of a request (pure): hex SHA-256 of everything that decides the answer. */
export function cacheKey(model: ModelConfig, tenant: string, input: unknown): string {
  const cache = model.cache!;
  const identity = {
    model: model.name,
    generation: cache.generation,
    ...(cache.scope === "tenant" ? { tenant } : {}),
    input,
  };
  return createHash("sha256").update(canonicalJson(identity)).digest("hex");
}

/** The canonical input of an OIP request: tensors by name, and the parameters the worker sees. */
export function oipCacheInput(inputs: readonly WireTensor[], parameters: Record<string, unknown>) {
  // Base64 as before raw task tensors existed, so entries stored then still hit.
  const tensors = [...inputs]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map(toBase64Tensor);
  return { inputs: tensors, parameters };
}

/** The canonical input of a generation: everything but where the stream goes. */
export function generationCacheInput(generation: GenerationRequest) {
  const { replyTo: _replyTo, ...rest } = generation;
  return { generation: rest };
}

/**
 * Looks the request up when the model caches and the request is deterministic (else undefined),
 * counting the hit or miss. A Redis failure reads as a miss: the cache must never refuse a request.
 */
export async function lookUp(
  ctx: GatewayContext,
  model: ModelConfig,
  tenant: string,
  input: unknown,
): Promise<CacheLookup | undefined> {
  const cache = model.cache;
  if (!cache) return undefined;
  const key = cacheKey(model, tenant, input);
  const hit = await ctx.resultCache.get(model.name, key).catch((error: unknown) => {
    ctx.log.warn({ err: error, model: model.name }, "result cache look-up failed; treating it as a miss");
    return undefined;
  });
  (hit ? ctx.metrics.cacheHits : ctx.metrics.cacheMisses).inc({ model: model.name });
  const store = {
    key,
    ttlSeconds: cache.ttlSeconds,
    maxEntries: cache.maxEntries,
    maxEntryBytes: cache.maxEntryBytes,
  };
  return { model: model.name, charge: cache.charge, store, ...(hit ? { hit } : {}) };
}

/** Tokens a hit reserves (and is settled with): none, or the cached answer's input + output. */
export function hitTokens(lookup: CacheLookup & { hit: CacheEntry }): number {
  return lookup.charge === "tokens" ? lookup.hit.inputTokens + lookup.hit.outputTokens : 0;
}

/** The fields a submission gets from a look-up: the hit's answer, or the miss's store instruction. */
export function submissionCache(lookup: CacheLookup | undefined): Pick<Submission, "cache" | "cachedAnswer"> {
  if (!lookup) return {};
  if (lookup.hit) return { cachedAnswer: { entry: lookup.hit, charge: lookup.charge } };
  return { cache: lookup.store };
}

/** The result a hit publishes to the results queue in place of a worker's (pure). */
export function cachedResult(s: Submission, finishedAt = Date.now()): InferenceResult {
  const answer = s.cachedAnswer!;
  return {
    requestId: s.requestId,
    tenant: s.tenant,
    target: s.target,
    status: "succeeded",
    outputs: answer.entry.outputs as Base64Tensor[],
    reservedTokens: s.reservedTokens,
    inputTokens: answer.entry.inputTokens,
    outputTokens: answer.entry.outputTokens,
    submittedAt: s.submittedAt,
    finishedAt,
    steps: [],
    cached: { charge: answer.charge },
  };
}

/** The final state a hit answers with at once (the collector writes the same as the record). */
export function cachedState(result: InferenceResult, chargedTokens: number): FinalState {
  const record: RequestRecord & { status: "succeeded" } = {
    id: result.requestId,
    tenant: result.tenant,
    target: result.target.name,
    targetKind: result.target.kind,
    status: "succeeded",
    outputs: result.outputs ?? [],
    error: null,
    reservedTokens: result.reservedTokens,
    inputTokens: result.inputTokens,
    outputTokens: result.outputTokens,
    chargedTokens,
    cached: true,
    submittedAt: new Date(result.submittedAt),
    finishedAt: new Date(result.finishedAt),
  };
  return { kind: "record", id: record.id, record };
}

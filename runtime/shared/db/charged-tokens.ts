/** The one rule that decides what a finished request costs its tenant. */
import type { InferenceResult } from "../contracts/index.js";

/**
 * Tokens charged for a finished request: the quota settle, the `tenant_usage` row and
 * `ml_tokens_processed_total` all use this number, so Redis, PostgreSQL and Prometheus agree.
 *
 * - succeeded: input + output tokens, as the worker counted them.
 * - a result-cache hit (`cached`): 0 with charge `none`, else the cached answer's input + output.
 * - cancelled (DELETE /v1/requests/{id}): what ran, as the worker counted it: 0 for a request
 *   skipped before it started, prompt + generated tokens for a generation stopped midway.
 * - failed: 0. A failure is most often ours (a worker crash, a poison message dead-lettered, a
 *   deadline the queue made us miss) and charging for it would bill tenants for our outages. Abuse by
 *   deliberately failing requests stays bounded: the request still consumed its requests-per-minute
 *   and concurrency slots at reserve time, and it still counts in `tenant_usage.requests`.
 */
export function chargedTokens(
  result: Pick<InferenceResult, "status" | "inputTokens" | "outputTokens" | "cached">,
): number {
  if (result.status === "failed") return 0;
  // A result-cache hit: no model ran. Charged as the model's spec.cache.charge says.
  if (result.cached && result.cached.charge === "none") return 0;
  return result.inputTokens + result.outputTokens;
}

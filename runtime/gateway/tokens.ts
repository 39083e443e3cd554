/**
 * How many tokens a request reserves before it is enqueued, pure. The reservation must cover what
 * the workers will charge (runtime/shared/models/task-signature.ts counts output tokens; the input
 * tokens set here travel with the task and are charged as they are), so it errs high: input tokens
 * plus the most output tokens every model step of the route can produce.
 *
 * Input tokens, by the first model's `tokens.mode`, plus its `perRequest` charge:
 * - characters: Unicode characters of the UTF-8 text (BYTES) inputs / charactersPerToken, rounded up.
 * - tokenizer: the gateway has no tokenizer yet, so it estimates characters / 4, rounded up (the
 *   usual ratio for BPE/WordPiece on English text).
 * - fixed: 0; the worker charges the model's unitsPerRequest (= max(1, perRequest)) as output tokens.
 * OCR recognition's input is an image: only `perRequest`; its output (decoded text) is charged by
 * the worker.
 */
import { type RouteStep, type ModelConfig, type RuntimeConfig } from "../shared/contracts/index.js";

/** Tokens of one request. */
export interface TokenEstimate {
  inputTokens: number;
  /** inputTokens + the maximum output tokens of the whole route. */
  reservedTokens: number;
}

/** Models of the route's model steps, in order (steps naming an unknown model are skipped). */
export function routeModels(config: RuntimeConfig, route: readonly RouteStep[]): ModelConfig[] {
  return route.flatMap((step) => {
    const model = step.model ? config.models.find((m) => m.name === step.model) : undefined;
    return model ? [model] : [];
  });
}

/** Input tokens of a request whose text inputs hold `characters` characters, for `model`. */
export function inputTokensFor(model: ModelConfig | undefined, characters: number): number {
  if (!model || model.tokens.mode === "fixed") return 0;
  const { perRequest, charactersPerToken } = model.tokens;
  if (model.task === "ocr-recognition") return perRequest;
  const perToken = model.tokens.mode === "tokenizer" ? 4 : charactersPerToken;
  return Math.ceil(characters / perToken) + perRequest;
}

/** The most output tokens one step of `model` can be charged. */
export function maxOutputTokensFor(model: ModelConfig): number {
  const countsText = model.task === "ocr-recognition" || model.tokens.mode === "characters";
  return countsText
    ? model.tokens.maxOutputTokens
    : Math.max(model.tokens.maxOutputTokens, model.tokens.unitsPerRequest);
}

/** The estimate for a route, given the characters of the request's text inputs. */
export function estimateTokens(models: readonly ModelConfig[], characters: number): TokenEstimate {
  const inputTokens = inputTokensFor(models[0], characters);
  const maxOutput = models.reduce((sum, m) => sum + maxOutputTokensFor(m), 0);
  return { inputTokens, reservedTokens: inputTokens + maxOutput };
}

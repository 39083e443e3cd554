/**
 * Parsing of result messages from the results queue. A message that fails here is poison: it can
 * never be recorded, so the collector dead-letters it instead of letting it block a batch forever.
 */
import { resultSchema, type InferenceResult } from "../shared/contracts/index.js";

/** A parsed message, or why it is poison. */
export type ParsedResult = { ok: true; result: InferenceResult } | { ok: false; reason: string };

/** Parses one message body (JSON InferenceResult). Pure. */
export function parseResultMessage(content: Buffer): ParsedResult {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString("utf8"));
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  return checkResult(raw);
}

/** Checks that `raw` is an InferenceResult the collector can record. Pure. */
export function checkResult(raw: unknown): ParsedResult {
  const parsed = resultSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    return { ok: false, reason: `not an InferenceResult: ${problems.slice(0, 5).join("; ")}` };
  }
  return { ok: true, result: parsed.data };
}

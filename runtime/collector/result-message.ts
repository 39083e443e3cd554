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

/** One result of a result-batch message: parsed, with what to dead-letter if it is poison. */
export interface ParsedBatchItem {
  parsed: ParsedResult;
  /** The item as it came, so a poison one is dead-lettered alone; absent when the whole message is poison. */
  raw?: unknown;
}

/** Parses a result-batch message body (a JSON array of InferenceResult). Pure. */
export function parseResultBatchMessage(content: Buffer): ParsedBatchItem[] {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString("utf8"));
  } catch (error) {
    return [{ parsed: { ok: false, reason: `not JSON: ${(error as Error).message}` } }];
  }
  if (!Array.isArray(raw) || raw.length === 0)
    return [{ parsed: { ok: false, reason: "a result batch must be a non-empty JSON array" } }];
  return raw.map((item: unknown) => ({ parsed: checkResult(item), raw: item }));
}

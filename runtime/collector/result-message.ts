/**
 * Parsing of result messages from the results queue. A message that fails here is poison: it can
 * never be recorded, so the collector dead-letters it instead of letting it block a batch forever.
 */
import { z } from "zod";
import { DATATYPES, type InferenceResult } from "../shared/contracts.js";
import { UUID_PATTERN } from "../shared/db/request-sql.js";

// PostgreSQL text and jsonb refuse U+0000: a string carrying it would fail the whole batch statement.
const text = z.string().refine((s) => !s.includes("\0"), "must not contain NUL characters");
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const epochMs = z.number().finite().min(0).max(8.64e15);

const wireTensorSchema = z.object({
  name: text.min(1),
  datatype: z.enum(DATATYPES),
  shape: z.array(z.number().int().min(0)),
  data: z.union([text, z.array(text)]),
});

const resultSchema = z.object({
  requestId: z.string().regex(UUID_PATTERN, "must be a UUID"),
  tenant: text.min(1).max(253),
  target: z.object({ kind: z.enum(["model", "pipeline"]), name: text.min(1).max(253) }),
  status: z.enum(["succeeded", "failed"]),
  outputs: z.array(wireTensorSchema).optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  reservedTokens: count,
  inputTokens: count,
  outputTokens: count,
  submittedAt: epochMs,
  finishedAt: epochMs,
  steps: z
    .array(
      z.object({
        step: z.string(),
        worker: z.string(),
        queuedMs: z.number().finite().min(0),
        inferMs: z.number().finite().min(0),
        batchSize: z.number().int().min(0),
      }),
    )
    .default([]),
});

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

/**
 * The gateway's process settings: the common runtime environment plus HTTP-facing knobs (CORS,
 * deadlines, body size, JWT, request-rate limits). Parsed once at start-up; a bad value stops the
 * process with a message naming the variable.
 */
import { z } from "zod";
import { commonEnvSchema, parseEnv } from "../shared/process-env.js";

const positiveMs = (fallback: number) => z.coerce.number().int().positive().default(fallback);
const optionalText = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === "" ? undefined : v.trim()));

/** An exact browser origin (scheme://host[:port]); "*" is refused on purpose. */
const originList = z
  .string()
  .default("")
  .transform((text, ctx) => {
    const origins = text
      .split(",")
      .map((o) => o.trim())
      .filter(Boolean);
    for (const origin of origins) {
      let parsed: URL | undefined;
      try {
        parsed = new URL(origin);
      } catch {
        parsed = undefined;
      }
      if (!parsed || parsed.origin !== origin) {
        ctx.addIssue({
          code: "custom",
          message: `"${origin}" is not an exact origin like https://app.example.com`,
        });
      }
    }
    return origins;
  });

/** The gateway's environment: the common runtime variables plus its own. */
export const gatewayEnvSchema = commonEnvSchema
  .extend({
    /** Comma-separated browser origins allowed by CORS; empty (default) sends no CORS headers. */
    TURNPIKE_CORS_ORIGINS: originList,
    /** How long a synchronous infer call waits before answering 202 with the request id. */
    TURNPIKE_SYNC_TIMEOUT_MS: positiveMs(30_000),
    /** Upper bound of the `timeout` parameter a caller may ask for. */
    TURNPIKE_MAX_SYNC_TIMEOUT_MS: positiveMs(300_000),
    /** Largest request body accepted; bigger ones get 413. */
    TURNPIKE_BODY_LIMIT_BYTES: z.coerce
      .number()
      .int()
      .positive()
      .default(8 * 1024 * 1024),
    /** How long an SSE stream waits for the final event before ending with a `timeout` event. */
    TURNPIKE_SSE_TIMEOUT_MS: positiveMs(300_000),
    /** Interval of SSE heartbeat comments (also when the stream re-checks the request's state). */
    TURNPIKE_SSE_HEARTBEAT_MS: positiveMs(15_000),
    /** Requests per client IP per rate window (every endpoint but health and metrics); 0 disables. */
    TURNPIKE_RATE_LIMIT_PER_IP: z.coerce.number().int().min(0).default(60_000),
    /** Requests per tenant per rate window; 0 disables. Token quotas are separate (TenantQuota). */
    TURNPIKE_RATE_LIMIT_PER_TENANT: z.coerce.number().int().min(0).default(60_000),
    TURNPIKE_RATE_LIMIT_WINDOW_MS: positiveMs(60_000),
    /**
     * How long a resolved API key is trusted without asking Redis again (a removed key keeps
     * working on this gateway for at most this long); 0 asks Redis on every request.
     */
    TURNPIKE_API_KEY_CACHE_MS: z.coerce.number().int().min(0).default(1_000),
    /**
     * Where an OCR request's PNG lines become the model's input tensor: "worker" (default) or
     * "gateway" (ocr-line-tensors.ts; pays when the worker's core is the model's alone).
     */
    TURNPIKE_OCR_PREPROCESS: z.enum(["worker", "gateway"]).default("worker"),
    /** Trust X-Forwarded-For (behind an ingress) when deciding the client IP. */
    TURNPIKE_TRUST_PROXY: z.stringbool().default(false),
    /** How long an Idempotency-Key keeps pointing at its first request. */
    TURNPIKE_IDEMPOTENCY_TTL_SECONDS: z.coerce.number().int().positive().default(86_400),
    /** Lifetime of the gateway's "queued" marker of a request (the collector's record supersedes it). */
    TURNPIKE_REQUEST_STATE_TTL_SECONDS: z.coerce.number().int().positive().default(86_400),
    /** JWT verification keys: a JWKS URL, or an HS256 shared secret (at least 32 bytes). */
    TURNPIKE_JWT_JWKS_URL: optionalText.pipe(z.url().optional()),
    TURNPIKE_JWT_SECRET: optionalText.pipe(z.string().min(32, "must be at least 32 characters").optional()),
    TURNPIKE_JWT_ISSUER: optionalText,
    TURNPIKE_JWT_AUDIENCE: optionalText,
    /** Claim holding the tenant name. */
    TURNPIKE_JWT_TENANT_CLAIM: z.string().min(1).default("tenant"),
  })
  .refine((env) => !(env.TURNPIKE_JWT_JWKS_URL && env.TURNPIKE_JWT_SECRET), {
    message: "set TURNPIKE_JWT_JWKS_URL or TURNPIKE_JWT_SECRET, not both",
    path: ["TURNPIKE_JWT_SECRET"],
  });

/** The parsed gateway environment, defaults filled in. */
export type GatewayEnv = z.infer<typeof gatewayEnvSchema>;

/** Reads the gateway's environment (defaults filled in), throwing one error naming every bad variable. */
export function gatewayEnv(env: NodeJS.ProcessEnv = process.env): GatewayEnv {
  return parseEnv(gatewayEnvSchema, env);
}

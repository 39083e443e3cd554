/**
 * A request-rate check that runs while the request's body arrives and is parsed instead of before
 * them: started in onRequest, it is awaited by the body parser (after parsing, before the parsed
 * body or its parse error is used), before validation, and by the error handler, so a refused
 * request still gets its 429 before anything else about it is answered (a broken or oversized body
 * included), and the Redis round trip overlaps the parsing of a tensor body. Only a key resolved
 * moments ago takes this path (gateway.ts), so an unknown caller's body is never parsed.
 */
import type { FastifyRequest } from "fastify";

/** Each request's check, settled to its refusal (or undefined), so nothing is left unhandled. */
const checks = new WeakMap<FastifyRequest, Promise<unknown>>();

/** Starts `check` for `request` without waiting for it; its rejection is the request's refusal. */
export function startLimitCheck(request: FastifyRequest, check: Promise<unknown>): void {
  checks.set(
    request,
    check.then(
      () => undefined,
      (refusal: unknown) => refusal ?? new Error("rate limit check failed"),
    ),
  );
}

/** The refusal of `request`'s check once it has answered; undefined when allowed or none started. */
export async function limitRefusal(request: FastifyRequest): Promise<unknown> {
  return checks.get(request);
}

/** Throws the refusal of `request`'s check, if any (a preValidation hook and the body parser). */
export async function enforceLimitCheck(request: FastifyRequest): Promise<void> {
  const refusal = await limitRefusal(request);
  if (refusal !== undefined) throw refusal;
}

/**
 * The request-rate limits (TURNPIKE_RATE_LIMIT_PER_IP and _PER_TENANT, counted in Redis by
 * @fastify/rate-limit), checked in the API scope's onRequest hook: before the body is read, so an
 * over-limit caller never makes the gateway read or parse a large body.
 *
 * One exception saves a Redis round trip per request: an infer request from an API key this gateway
 * resolved moments ago, with a small body of announced length (Content-Length up to
 * DEFERRED_LIMITS_MAX_BYTES, which has usually arrived with the headers anyway). Its limits go to
 * Redis in the same write as its quota reservation (submit.ts); refused there, the reservation is
 * released again. Whatever happens before that (a broken body, a media type refused, a cache
 * lookup) runs the limits first, so an over-limit request still gets 429 whatever its body, and
 * every request counts once.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { GatewayContext } from "./context.js";
import { ApiError, errorHandler } from "./errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** This request's rate limits, when they wait to go out with its reservation (see the module comment). */
    deferredLimits?: DeferredLimits;
  }
  interface FastifyContextConfig {
    /** The route may defer the rate limits of a small body to its first Redis call (the infer routes). */
    deferLimits?: boolean;
  }
}

/** Bodies up to this many bytes (announced by Content-Length) may have their limits deferred. */
export const DEFERRED_LIMITS_MAX_BYTES = 16 * 1024;

/** A request's rate limits, checked at most once; a refusal rejects with 429 rate_limited. */
export interface DeferredLimits {
  /** Checks the limits (the first call does; later calls return the same outcome). */
  check(): Promise<void>;
  /** Whether check() was called. */
  readonly started: boolean;
}

type Limiter = ReturnType<FastifyInstance["createRateLimit"]>;

/** Registers the limits on the API scope `api` (its onRequest hook, error handler and a safety net). */
export function requestLimits(api: FastifyInstance, ctx: GatewayContext): void {
  const { env } = ctx;
  const limit = (max: number, key: (r: FastifyRequest) => string) =>
    max > 0
      ? api.createRateLimit({ max, timeWindow: env.TURNPIKE_RATE_LIMIT_WINDOW_MS, keyGenerator: key })
      : undefined;
  const perIp = limit(env.TURNPIKE_RATE_LIMIT_PER_IP, (r) => `ip:${r.ip}`);
  const perTenant = limit(env.TURNPIKE_RATE_LIMIT_PER_TENANT, (r) => `tenant:${r.tenant}`);
  // Both limits in one round trip, the IP's refusal first (a request the IP limit refuses then
  // also counts against its tenant's limit).
  const both = async (request: FastifyRequest) => {
    const [ip, tenant] = await Promise.allSettled([
      perIp && enforce(perIp, request, "client IP"),
      perTenant && enforce(perTenant, request, "tenant"),
    ]);
    if (ip.status === "rejected") throw ip.reason;
    if (tenant.status === "rejected") throw tenant.reason;
  };

  api.addHook("onRequest", async (request) => {
    const known = ctx.authenticator.knownTenantOf(request.headers);
    if (known !== undefined) {
      request.tenant = known;
      if ((perIp || perTenant) && deferrable(request)) request.deferredLimits = deferred(() => both(request));
      else await both(request);
      return;
    }
    if (perIp) await enforce(perIp, request, "client IP");
    request.tenant = await ctx.authenticator.tenantOf(request.headers);
    if (perTenant) await enforce(perTenant, request, "tenant");
  });

  // An error before the deferred limits ran (a body that does not parse, a refused media type, a
  // bad input): the limits decide first, as if they had run before the body was read.
  const send = errorHandler(ctx.log);
  api.setErrorHandler(async (error, request: FastifyRequest, reply: FastifyReply) => {
    const refusal = await request.deferredLimits?.check().then(
      () => undefined,
      (limited: unknown) => limited,
    );
    return send(refusal ?? error, request, reply);
  });
  // Every request counts, even one whose route answered without calling Redis.
  api.addHook("onResponse", async (request) => {
    if (request.deferredLimits && !request.deferredLimits.started) {
      await request.deferredLimits.check().catch(() => undefined);
    }
  });
}

/** An infer request whose small body is announced by its Content-Length. */
function deferrable(request: FastifyRequest): boolean {
  if (!request.routeOptions.config?.deferLimits) return false;
  if (request.headers["transfer-encoding"] !== undefined) return false;
  const length = Number(request.headers["content-length"]);
  return Number.isInteger(length) && length >= 0 && length <= DEFERRED_LIMITS_MAX_BYTES;
}

function deferred(run: () => Promise<void>): DeferredLimits {
  let outcome: Promise<void> | undefined;
  return {
    check: () => (outcome ??= run()),
    get started() {
      return outcome !== undefined;
    },
  };
}

/** Applies a request-rate limiter; over it, 429 rate_limited with Retry-After and X-RateLimit-*. */
async function enforce(limiter: Limiter, request: FastifyRequest, what: string): Promise<void> {
  const result = await limiter(request);
  if (result.isAllowed || !result.isExceeded) return;
  throw new ApiError(
    "rate_limited",
    `too many requests from this ${what}; retry in ${result.ttlInSeconds} s`,
    {
      "retry-after": result.ttlInSeconds,
      "x-ratelimit-limit": result.max,
      "x-ratelimit-remaining": 0,
      "x-ratelimit-reset": result.ttlInSeconds,
    },
  );
}

/** Unauthenticated endpoints: liveness, readiness (Redis and RabbitMQ reachable) and /metrics. */
import type { FastifyInstance } from "fastify";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";

const CHECK_TIMEOUT_MS = 2_000;

/** Registers /v2/health/live, /v2/health/ready and /metrics. */
export function healthRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/v2/health/live", async () => ({ live: true }));

  app.get("/v2/health/ready", async () => {
    const problems: string[] = [];
    if (!ctx.accepting) problems.push("shutting down");
    const [redis, amqp] = await Promise.allSettled([
      withTimeout(ctx.redis.ping(), "Redis"),
      withTimeout(ctx.publisher.start(), "RabbitMQ"),
    ]);
    if (redis.status === "rejected") problems.push(`Redis: ${(redis.reason as Error).message}`);
    if (amqp.status === "rejected") problems.push(`RabbitMQ: ${(amqp.reason as Error).message}`);
    if (!ctx.completions.ready) problems.push("Redis completion subscription is down");
    if (problems.length > 0) throw new ApiError("service_unavailable", `not ready: ${problems.join("; ")}`);
    return { ready: true };
  });

  app.get("/metrics", async (_request, reply) => {
    reply.type(ctx.metrics.registry.contentType);
    return ctx.metrics.registry.metrics();
  });
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what} did not answer within ${CHECK_TIMEOUT_MS} ms`)),
      CHECK_TIMEOUT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Wiring of the gateway role: clients, domain objects, plugins (CORS, rate limits) and routes.
 * startGateway() is what main.ts and the tests call; it owns everything it opens and closes it.
 */
import { setMaxListeners } from "node:events";
import cors from "@fastify/cors";
import rateLimit from "@fastify/rate-limit";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import pg from "pg";
import { names, type RuntimeConfig } from "../shared/contracts/index.js";
import { RequestRecords } from "../shared/db/index.js";
import { logger } from "../shared/logger.js";
import { createMetrics } from "../shared/metrics.js";
import { listenUrl } from "../shared/probe-server.js";
import { QuotaStore } from "../shared/quota/index.js";
import { ResultCacheStore } from "../shared/result-cache-store.js";
import { readRuntimeConfig, watchRuntimeConfig } from "../shared/runtime-config-file.js";
import { Authenticator } from "./auth.js";
import { CompletionHub } from "./completions.js";
import { StreamHub } from "./openai/stream-hub.js";
import type { GatewayEnv } from "./config.js";
import type { GatewayContext, GatewayHooks } from "./context.js";
import { ApiError, clientErrorHandler, ERROR_CODE_HEADER, errorHandler, sendError } from "./errors.js";
import { HEADER_LENGTH_HEADER } from "./oip/binary-tensors.js";
import { registerBodyParsers } from "./oip/body-parsers.js";
import { TaskPublisher } from "./publisher.js";
import { RequestStates } from "./request-state.js";
import { healthRoutes } from "./routes/health.js";
import { inferRoutes } from "./routes/infer.js";
import { openAiRoutes } from "./openai/openai-routes.js";
import { modelRoutes } from "./routes/models.js";
import { requestRoutes } from "./routes/requests.js";
import { requestLimits } from "./request-limits.js";
import { Submitter } from "./submit.js";
import { tenantRoutes } from "./routes/tenant.js";
import { TenantRecords } from "./tenant/tenant-records.js";

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  env: GatewayEnv;
  /** The runtime config itself, or the path of its file (then reloaded when it changes). */
  config: RuntimeConfig | string;
  hooks?: GatewayHooks;
}

/** A running gateway. */
export interface Gateway {
  /** Base URL, e.g. http://127.0.0.1:41234. */
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

const EXPOSED_HEADERS = [
  "location",
  "retry-after",
  "x-request-id",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
  "preference-applied",
  ERROR_CODE_HEADER,
  HEADER_LENGTH_HEADER,
];

/** Connects to Redis, RabbitMQ and PostgreSQL, then listens on TURNPIKE_HOST:TURNPIKE_PORT. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const { env } = options;
  const log = logger("gateway");
  let config = typeof options.config === "string" ? readRuntimeConfig(options.config) : options.config;
  const prefix = config.prefix;
  const closers: (() => Promise<unknown> | unknown)[] = [];
  const closeAll = async () => {
    for (const close of closers.reverse()) await Promise.resolve(close()).catch(() => undefined);
  };

  try {
    if (typeof options.config === "string") {
      const path = options.config;
      const stop = watchRuntimeConfig(
        path,
        (next) => {
          if (next.prefix !== prefix) return log.error({ path }, "ignoring a config that changes the prefix");
          config = next;
          log.info({ path }, "runtime config reloaded");
        },
        (error) => log.error({ err: error, path }, "keeping the previous runtime config"),
      );
      closers.push(stop);
    }
    const redis = new Redis(env.TURNPIKE_REDIS_URL, {
      connectionName: "turnpike-gateway",
      maxRetriesPerRequest: 2,
      // Commands of concurrent requests issued in one tick go out in one write (fewer syscalls on
      // both sides under load; no extra wait: the batch is sent at the end of the tick).
      enableAutoPipelining: true,
    });
    // Once connected, a command issued while Redis is away fails at once (a prompt 503) instead of
    // waiting in ioredis's offline queue until Redis is back (seconds, with the client on hold).
    redis.once("ready", () => {
      redis.options.enableOfflineQueue = false;
    });
    closers.push(() => redis.quit());
    const pool = new pg.Pool({
      connectionString: env.TURNPIKE_DATABASE_URL,
      max: 10,
      application_name: "turnpike-gateway",
    });
    // PostgreSQL ending idle sessions (a restart, a failover) is emitted here; without a listener
    // the unhandled 'error' event would kill the gateway. The next query reconnects.
    pool.on("error", (err: Error & { code?: string }) =>
      log.warn({ err: err.message, code: err.code }, "idle PostgreSQL client failed"),
    );
    closers.push(() => pool.end());
    const completions = await CompletionHub.start(
      env.TURNPIKE_REDIS_URL,
      names(prefix).completionChannel,
      log,
    );
    closers.push(() => completions.close());
    const replies = new StreamHub(env.TURNPIKE_AMQP_URL, prefix, log);
    closers.push(() => replies.close());
    await replies.start();
    const publisher = new TaskPublisher(env.TURNPIKE_AMQP_URL, log, prefix);
    closers.push(() => publisher.close());
    await publisher.start();

    const stopping = new AbortController();
    // Every waiting synchronous request listens to it: dozens at once is normal, not a leak.
    setMaxListeners(0, stopping.signal);
    const metrics = createMetrics("gateway");
    const quota = new QuotaStore(redis, prefix);
    const states = new RequestStates(
      redis,
      new RequestRecords(pool, env.TURNPIKE_DB_SCHEMA),
      prefix,
      env.TURNPIKE_REQUEST_STATE_TTL_SECONDS,
    );
    const ctx: GatewayContext = {
      env,
      config: () => config,
      prefix,
      redis,
      quota,
      states,
      tenantRecords: new TenantRecords(pool, env.TURNPIKE_DB_SCHEMA),
      completions,
      replies,
      publisher,
      submitter: new Submitter({
        redis,
        quota,
        states,
        publisher,
        prefix,
        idempotencyTtlSeconds: env.TURNPIKE_IDEMPOTENCY_TTL_SECONDS,
        metrics,
        config: () => config,
      }),
      resultCache: new ResultCacheStore(redis, prefix),
      authenticator: new Authenticator(quota, env),
      metrics,
      log,
      hooks: options.hooks ?? {},
      accepting: true,
      stopping: stopping.signal,
      streams: new Set(),
    };

    const app = await buildApp(ctx);
    closers.push(() => app.close());
    const url = await listenUrl(app, env.TURNPIKE_HOST, env.TURNPIKE_PORT);
    log.info({ url, prefix }, "gateway listening");
    return {
      url,
      app,
      close: async () => {
        ctx.accepting = false;
        stopping.abort();
        for (const end of [...ctx.streams]) end();
        await closeAll();
      },
    };
  } catch (error) {
    await closeAll();
    throw new Error("starting the gateway", { cause: error });
  }
}

/** The fastify app with its plugins and routes (no listening). */
async function buildApp(ctx: GatewayContext): Promise<FastifyInstance> {
  const { env } = ctx;
  const app = Fastify({
    loggerInstance: ctx.log as FastifyBaseLogger,
    bodyLimit: env.TURNPIKE_BODY_LIMIT_BYTES,
    trustProxy: env.TURNPIKE_TRUST_PROXY,
    // Per-request access lines would dominate the log at load; errors are logged by errors.ts.
    logController: new LogController({ disableRequestLogging: true }),
    // Draining is handled below, so refusals keep the JSON error shape.
    return503OnClosing: false,
    // Requests the HTTP parser or the router refuse get the same JSON error shape too.
    clientErrorHandler: clientErrorHandler(ctx.log),
    frameworkErrors: (error, _request, reply) => sendError(reply, error, ctx.log),
  });
  app.decorateRequest("tenant", "");
  app.setErrorHandler(errorHandler(ctx.log));
  app.setNotFoundHandler(() => {
    throw new ApiError(
      "route_not_found",
      "no such endpoint; see /v2/models/{name}/infer and /v1/requests/{id}",
    );
  });
  // While shutting down: refuse new requests, and close each connection after its answer so that
  // keep-alive sockets of requests still in flight do not hold the server open.
  app.addHook("onRequest", async (_request, reply) => {
    if (ctx.accepting) return;
    reply.header("connection", "close");
    throw new ApiError("service_unavailable", "the gateway is shutting down; retry", { "retry-after": 1 });
  });
  app.addHook("onSend", async (_request, reply) => {
    if (!ctx.accepting) reply.header("connection", "close");
  });
  // JSON only (no Content-Type is JSON; binary tensor data after a JSON header): others get 415.
  app.removeContentTypeParser("text/plain");
  registerBodyParsers(app);

  await app.register(cors, {
    // An exact allow-list; `false` (no origins configured) sends no CORS headers at all.
    origin: env.TURNPIKE_CORS_ORIGINS.length > 0 ? env.TURNPIKE_CORS_ORIGINS : false,
    methods: ["GET", "POST", "DELETE", "OPTIONS"],
    allowedHeaders: [
      "authorization",
      "x-api-key",
      "content-type",
      "idempotency-key",
      "prefer",
      "last-event-id",
      HEADER_LENGTH_HEADER,
    ],
    exposedHeaders: EXPOSED_HEADERS,
    maxAge: 600,
  });
  await app.register(rateLimit, {
    global: false,
    redis: ctx.redis,
    nameSpace: `tp:${ctx.prefix}:ratelimit:`,
    timeWindow: env.TURNPIKE_RATE_LIMIT_WINDOW_MS,
    skipOnError: true, // Redis trouble shows in readiness; it should not also fail every request here
  });

  healthRoutes(app, ctx);
  await app.register(async (api) => {
    requestLimits(api, ctx);
    modelRoutes(api, ctx);
    inferRoutes(api, ctx);
    requestRoutes(api, ctx);
    tenantRoutes(api, ctx);
    await api.register((openai) => openAiRoutes(openai, ctx));
  });
  return app;
}

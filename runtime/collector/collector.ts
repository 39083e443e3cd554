/**
 * Wires the collector role: settings, migrations, PostgreSQL, Redis, the quota store, the results
 * consumer and the probe server. No logic of its own beyond start-up and shutdown order.
 */
import { Redis } from "ioredis";
import pg from "pg";
import { migrate } from "./db/migrate.js";
import { RequestRecords } from "../shared/db/request-records.js";
import { logger } from "../shared/logger.js";
import { createMetrics } from "../shared/metrics.js";
import { QuotaStore } from "../shared/quota/index.js";
import type { RuntimeConfig } from "../shared/contracts/index.js";
import { readRuntimeConfig } from "../shared/runtime-config-file.js";
import { loadCollectorSettings } from "./config.js";
import { startProbeServer } from "../shared/probe-server.js";
import { ResultConsumer, type CollectorHooks } from "./result-consumer.js";
import { ResultSink } from "./result-sink.js";

export interface CollectorOptions {
  /** Environment to read settings from (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** The runtime config, or the path of its file (default: TURNPIKE_CONFIG). Only `prefix` is used. */
  config?: RuntimeConfig | string;
  /** Test seams; see CollectorHooks. */
  hooks?: CollectorHooks;
}

/** A running collector. */
export interface Collector {
  /** Base URL of the probe server (/healthz, /readyz, /metrics). */
  url: string;
  /** Graceful stop: stop consuming, record and acknowledge what was delivered, disconnect. */
  close(): Promise<void>;
  /** Crash-like stop: disconnect without flushing or acknowledging (tests; fatal errors). */
  abort(): Promise<void>;
}

/**
 * Starts the collector. Fails (and releases what it opened) when a dependency is unreachable at
 * start-up; once running it outlasts outages of RabbitMQ, PostgreSQL and Redis by retrying.
 * The installation prefix is read once: a config reload that changes it needs a restart.
 */
export async function startCollector(options: CollectorOptions = {}): Promise<Collector> {
  const settings = loadCollectorSettings(options.env ?? process.env);
  const { env } = settings;
  const source = options.config ?? env.TURNPIKE_CONFIG;
  const config = typeof source === "string" ? readRuntimeConfig(source) : source;
  const log = logger("collector", { prefix: config.prefix, schema: env.TURNPIKE_DB_SCHEMA });
  const cleanups: (() => Promise<unknown>)[] = [];
  const cleanUp = async () => {
    for (const fn of cleanups.reverse()) await fn().catch((err) => log.warn({ err }, "cleanup failed"));
  };

  try {
    // Migrating at start means a fresh schema never meets a collector that cannot write to it.
    await migrate(env.TURNPIKE_DATABASE_URL, env.TURNPIKE_DB_SCHEMA);

    const pool = new pg.Pool({
      connectionString: env.TURNPIKE_DATABASE_URL,
      max: 4,
      // Named per installation so operators (and tests) can tell collectors apart in pg_stat_activity.
      application_name: `turnpike-collector-${config.prefix}`.slice(0, 63),
    });
    // An idle client dropped by the server emits here; without a listener it would kill the process.
    pool.on("error", (err: Error & { code?: string }) =>
      log.warn({ err: err.message, code: err.code }, "idle PostgreSQL client failed"),
    );
    cleanups.push(() => pool.end());

    const redis = new Redis(env.TURNPIKE_REDIS_URL, {
      // Fail individual commands fast during an outage; ResultSink retries with its own backoff.
      maxRetriesPerRequest: 2,
      connectionName: `turnpike-collector-${config.prefix}`,
      // A batch settles every result at once: their commands go out in one write per tick.
      enableAutoPipelining: true,
    });
    redis.on("error", (err: Error) => log.warn({ err: err.message }, "Redis connection error"));
    cleanups.push(async () => redis.disconnect());

    const metrics = createMetrics("collector");
    const sink = new ResultSink({
      records: new RequestRecords(pool, env.TURNPIKE_DB_SCHEMA),
      quota: new QuotaStore(redis, config.prefix),
      redis,
      metrics,
      prefix: config.prefix,
      log,
    });
    const consumer = new ResultConsumer({
      amqpUrl: env.TURNPIKE_AMQP_URL,
      prefix: config.prefix,
      batchSize: settings.batchSize,
      flushMs: settings.flushMs,
      prefetch: settings.prefetch,
      closeTimeoutMs: settings.closeTimeoutMs,
      sink,
      log,
      hooks: options.hooks,
    });

    const probes = await startProbeServer({
      host: env.TURNPIKE_HOST,
      port: env.TURNPIKE_PORT,
      metrics,
      isReady: () => consumer.consuming,
    });
    cleanups.push(() => probes.close());

    cleanups.push(() => consumer.close());
    await consumer.start();
    log.info({ url: probes.url, batch: settings.batchSize, flushMs: settings.flushMs }, "collector started");

    let stopping: Promise<void> | undefined;
    const stop = (how: "close" | "abort") => {
      stopping ??= (async () => {
        if (how === "abort") await consumer.abort();
        // Consumer first (it still needs PostgreSQL and Redis to flush), then everything else.
        await cleanUp();
        log.info({ how }, "collector stopped");
      })();
      return stopping;
    };
    return { url: probes.url, close: () => stop("close"), abort: () => stop("abort") };
  } catch (error) {
    await cleanUp();
    throw new Error("starting the collector", { cause: error });
  }
}

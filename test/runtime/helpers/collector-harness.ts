/**
 * A per-test world for collector tests, all on the real services: a unique installation prefix, a
 * migrated schema, a publisher on the results queue, a Redis subscriber for completion notices, the
 * real QuotaStore, and a cleanup that removes queues, keys and the schema again.
 */
import amqp, { type ChannelModel, type ConfirmChannel } from "amqplib";
import { Redis } from "ioredis";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { declareSharedTopology, publishJson } from "../../../runtime/shared/amqp.js";
import {
  names,
  type CompletionNotice,
  type InferenceResult,
} from "../../../runtime/shared/contracts/index.js";
import { RequestRecords } from "../../../runtime/shared/db/index.js";
import { QuotaStore } from "../../../runtime/shared/quota/index.js";
import { runtimeEnv, serviceUrls, uniqueName } from "../../harness/services.js";
import { dropSchema, uniqueSchema } from "./collector-fixtures.js";

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  intervalMs = 25,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Everything one collector test needs; `cleanup()` undoes it. */
export interface CollectorWorld {
  prefix: string;
  schema: string;
  configPath: string;
  urls: ReturnType<typeof serviceUrls>;
  pool: pg.Pool;
  records: RequestRecords;
  redis: Redis;
  quota: QuotaStore;
  channel: ConfirmChannel;
  /** Completion notices received so far, in order. */
  notices: CompletionNotice[];
  /** Environment for startCollector() (or a child process) pointing at this world. */
  env(extra?: Record<string, string>): NodeJS.ProcessEnv;
  /** Publishes one result to the results queue exactly as a worker does (messageId = requestId). */
  publish(result: InferenceResult | Buffer, messageId?: string): Promise<void>;
  /** Notices received for `requestId`. */
  noticesFor(requestId: string): CompletionNotice[];
  /** Number of rows in the requests table. */
  rowCount(): Promise<number>;
  cleanup(): Promise<void>;
}

/** Creates a world: prefix, schema name (migrated by the collector itself), clients, subscriber. */
export async function collectorWorld(label: string): Promise<CollectorWorld> {
  const urls = serviceUrls();
  const prefix = uniqueName(label);
  const schema = uniqueSchema(label.replaceAll("-", "_"));
  const dir = mkdtempSync(join(tmpdir(), "turnpike-collector-"));
  const configPath = join(dir, "runtime.json");
  writeFileSync(configPath, JSON.stringify({ prefix }));

  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 2 });
  const redis = new Redis(urls.redisUrl);
  const subscriber = new Redis(urls.redisUrl);
  const notices: CompletionNotice[] = [];
  const n = names(prefix);
  await subscriber.subscribe(n.completionChannel);
  subscriber.on("message", (_channel: string, message: string) => {
    // One message per committed batch: an array of notices.
    const parsed = JSON.parse(message) as CompletionNotice | CompletionNotice[];
    notices.push(...(Array.isArray(parsed) ? parsed : [parsed]));
  });

  const connection: ChannelModel = await amqp.connect(urls.amqpUrl);
  const channel = await connection.createConfirmChannel();
  await declareSharedTopology(channel, prefix);

  return {
    prefix,
    schema,
    configPath,
    urls,
    pool,
    records: new RequestRecords(pool, schema),
    redis,
    quota: new QuotaStore(redis, prefix),
    channel,
    notices,
    env: (extra = {}) => ({
      ...runtimeEnv(schema, configPath),
      TURNPIKE_LOG_LEVEL: process.env.TURNPIKE_LOG_LEVEL ?? "warn",
      ...extra,
    }),
    publish: (result, messageId) => {
      if (Buffer.isBuffer(result)) {
        return new Promise<void>((resolve, reject) =>
          channel.sendToQueue(n.resultsQueue, result, { persistent: true, messageId }, (err: unknown) =>
            err ? reject(new Error("publish nacked")) : resolve(),
          ),
        );
      }
      return publishJson(channel, n.resultsQueue, result, { messageId: messageId ?? result.requestId });
    },
    noticesFor: (requestId) => notices.filter((x) => x.requestId === requestId),
    rowCount: async () => {
      try {
        const answer = await pool.query<{ n: string }>(
          `SELECT count(*)::text AS n FROM "${schema}".requests`,
        );
        return Number(answer.rows[0]?.n ?? 0);
      } catch (error) {
        // Not migrated yet (a collector starting in another process creates the table).
        if ((error as { code?: string }).code === "42P01") return 0;
        throw error;
      }
    },
    async cleanup() {
      for (const queue of n.sharedQueues) await channel.deleteQueue(queue).catch(() => undefined);
      await channel.deleteExchange(n.deadLetterExchange).catch(() => undefined);
      await connection.close().catch(() => undefined);
      const keys = await redis.keys(`tp:*${prefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      subscriber.disconnect();
      redis.disconnect();
      await pool.end();
      await dropSchema(urls.databaseUrl, schema);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

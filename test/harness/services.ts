import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { recordRunName } from "./run-names.js";

/** Where the real backing services of the tests answer. */
export interface ServiceUrls {
  /** Redis, e.g. `redis://127.0.0.1:6379` (env `TURNPIKE_REDIS_URL`). */
  redisUrl: string;
  /** RabbitMQ AMQP 0-9-1 with credentials (env `TURNPIKE_AMQP_URL`). */
  amqpUrl: string;
  /** RabbitMQ management HTTP API base URL, without credentials (env `TURNPIKE_RABBIT_MANAGEMENT_URL`). */
  rabbitManagementUrl: string;
  /** User for the management API, taken from `amqpUrl`. */
  rabbitUser: string;
  /** Password for the management API, taken from `amqpUrl`. */
  rabbitPassword: string;
  /** PostgreSQL connection string (env `TURNPIKE_DATABASE_URL`). */
  databaseUrl: string;
}

/** The repository root, resolved from this file (test/harness/services.ts). */
const repoRoot = fileURLToPath(new URL("../../", import.meta.url));

/** Service endpoints from the environment, defaulting to what `hack/services.sh` starts. */
export function serviceUrls(): ServiceUrls {
  const env = process.env;
  const amqpUrl = env.TURNPIKE_AMQP_URL || "amqp://turnpike:turnpike@127.0.0.1:5672";
  const amqp = new URL(amqpUrl);
  return {
    redisUrl: env.TURNPIKE_REDIS_URL || "redis://127.0.0.1:6379",
    amqpUrl,
    rabbitManagementUrl: env.TURNPIKE_RABBIT_MANAGEMENT_URL || "http://127.0.0.1:15672",
    rabbitUser: decodeURIComponent(amqp.username) || "guest",
    rabbitPassword: decodeURIComponent(amqp.password) || "guest",
    databaseUrl: env.TURNPIKE_DATABASE_URL || "postgres://turnpike:turnpike@127.0.0.1:5432/turnpike",
  };
}

/** The management API URL with credentials, as the runtime Secret and the operator carry it. */
export function rabbitManagementUrl(): string {
  const urls = serviceUrls();
  const url = new URL(urls.rabbitManagementUrl);
  url.username = urls.rabbitUser;
  url.password = urls.rabbitPassword;
  return url.toString().replace(/\/$/, "");
}

/**
 * Environment of a runtime role (gateway, worker, collector) on these services: the service URLs,
 * PostgreSQL schema `schema`, any free port on loopback, and the runtime config file if given.
 */
export function runtimeEnv(schema: string, configPath?: string): Record<string, string> {
  const urls = serviceUrls();
  return {
    ...(configPath ? { TURNPIKE_CONFIG: configPath } : {}),
    TURNPIKE_AMQP_URL: urls.amqpUrl,
    TURNPIKE_REDIS_URL: urls.redisUrl,
    TURNPIKE_DATABASE_URL: urls.databaseUrl,
    TURNPIKE_DB_SCHEMA: schema,
    TURNPIKE_PORT: "0",
    TURNPIKE_HOST: "127.0.0.1",
  };
}

/**
 * A short unique name usable as a Kubernetes name (DNS-1123 label), queue name, key prefix or
 * (quoted) schema name: the lowercased, sanitised prefix, "-", and random base36; at most 40 chars.
 */
export function uniqueName(prefix: string): string {
  const suffix = randomBytes(8).readBigUInt64BE().toString(36).padStart(10, "0").slice(0, 10);
  const head =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, "-")
      .slice(0, 40 - 1 - suffix.length)
      .replace(/^-+|-+$/g, "") || "t";
  const name = `${head}-${suffix}`;
  recordRunName(name);
  return name;
}

let running: Promise<void> | undefined;

/**
 * Installs (if needed) and starts PostgreSQL, Redis and RabbitMQ via `hack/services.sh`, once per
 * process. The script's output goes to stderr; on failure the error carries that output.
 */
export function ensureServices(): Promise<void> {
  running ??= new Promise<void>((resolve, reject) => {
    const child = spawn("bash", [`${repoRoot}hack/services.sh`], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: Buffer[] = [];
    const forward = (chunk: Buffer): void => {
      output.push(chunk);
      process.stderr.write(chunk);
    };
    child.stdout.on("data", forward);
    child.stderr.on("data", forward);
    child.on("error", (err) => reject(new Error("running hack/services.sh", { cause: err })));
    child.on("close", (code, signal) => {
      if (code === 0) return resolve();
      const text = Buffer.concat(output).toString("utf8").trim();
      reject(new Error(`hack/services.sh failed (${signal ?? `exit ${code}`}):\n${text}`));
    });
  }).catch((err: unknown) => {
    running = undefined; // let a later call retry
    throw err;
  });
  return running;
}

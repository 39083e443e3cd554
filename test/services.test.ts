// Smoke tests proving the backing services from hack/services.sh are real: RabbitMQ (quorum queue,
// publisher confirms, manual ack, management API), Redis (Lua with a hash-tagged key) and PostgreSQL
// (a node-pg-migrate migration in a throwaway schema, then an upsert). No mocks.
import { connect } from "amqplib";
import { Redis } from "ioredis";
import { runner } from "node-pg-migrate";
import pg from "pg";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureServices, serviceUrls, uniqueName } from "./harness/services.js";

const urls = serviceUrls();
const migrationsDir = fileURLToPath(new URL("./fixtures/migrations", import.meta.url));

/** GET on the RabbitMQ management API with basic auth (default: the configured user). */
function management(path: string, user = urls.rabbitUser, password = urls.rabbitPassword): Promise<Response> {
  const auth = Buffer.from(`${user}:${password}`).toString("base64");
  return fetch(`${urls.rabbitManagementUrl}${path}`, { headers: { authorization: `Basic ${auth}` } });
}

/** ioredis client with the command added by defineCommand below. */
type QuotaRedis = Redis & { takeTokens(key: string, amount: number, limit: number): Promise<number> };

beforeAll(async () => {
  await ensureServices();
});

describe("RabbitMQ", () => {
  it("round-trips a confirmed persistent message through a durable quorum queue", async () => {
    const queue = uniqueName("smoke");
    const connection = await connect(urls.amqpUrl);
    try {
      const channel = await connection.createConfirmChannel();
      const declared = await channel.assertQueue(queue, {
        durable: true,
        arguments: { "x-queue-type": "quorum" },
      });
      expect(declared.queue).toBe(queue);
      try {
        const info = await management(`/api/queues/%2F/${queue}`);
        expect(info.status).toBe(200);
        expect(((await info.json()) as { type?: string }).type).toBe("quorum");

        const body = `hello ${queue}`;
        await new Promise<void>((resolve, reject) => {
          channel.sendToQueue(queue, Buffer.from(body), { persistent: true }, (err) =>
            err ? reject(new Error("message was nacked", { cause: err })) : resolve(),
          );
        });

        const received = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error("no message within 10 s")), 10_000);
          void channel.consume(
            queue,
            (msg) => {
              if (!msg) return reject(new Error("consumer cancelled by the broker"));
              clearTimeout(timer);
              channel.ack(msg);
              resolve(msg.content.toString("utf8"));
            },
            { noAck: false },
          );
        });
        expect(received).toBe(body);
      } finally {
        await channel.deleteQueue(queue);
        await channel.close();
      }
      // deleteQueue really removed it.
      const check = await connection.createChannel();
      check.on("error", () => {}); // a failed checkQueue closes the channel with 404
      await expect(check.checkQueue(queue)).rejects.toThrow(/NOT_FOUND/);
    } finally {
      await connection.close();
    }
  });

  it("answers the management API as the turnpike user", async () => {
    const res = await management("/api/overview");
    expect(res.status).toBe(200);
    const overview = (await res.json()) as { node?: string; rabbitmq_version?: string };
    expect(overview.rabbitmq_version).toMatch(/^3\./);
    expect(overview.node).toBeTruthy();

    const denied = await management("/api/overview", "nobody", "wrong");
    expect(denied.status).toBe(401);
  });
});

describe("Redis", () => {
  it("runs an atomic check-and-incrby Lua script on a hash-tagged key", async () => {
    const redis = new Redis(urls.redisUrl, {
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    // Adds ARGV[1] to KEYS[1] only if the total stays within ARGV[2]; returns the new total or -1.
    const script = `
      local used = tonumber(redis.call("GET", KEYS[1]) or "0")
      local want = tonumber(ARGV[1])
      if used + want > tonumber(ARGV[2]) then return -1 end
      return redis.call("INCRBY", KEYS[1], want)
    `;
    const key = `{${uniqueName("tenant")}}:tokens`;
    try {
      await redis.connect();
      redis.defineCommand("takeTokens", { numberOfKeys: 1, lua: script });
      const take = (n: number, limit: number): Promise<number> =>
        (redis as QuotaRedis).takeTokens(key, n, limit);

      expect(await take(60, 100)).toBe(60);
      expect(await take(30, 100)).toBe(90);
      expect(await take(20, 100)).toBe(-1); // would exceed the limit: nothing taken
      expect(await redis.get(key)).toBe("90");
    } finally {
      await redis.del(key).catch(() => 0);
      redis.disconnect();
    }
  });
});

describe("PostgreSQL", () => {
  it("applies a node-pg-migrate migration in a unique schema and upserts idempotently", async () => {
    const schema = uniqueName("smoke");
    const client = new pg.Client({ connectionString: urls.databaseUrl });
    await client.connect();
    try {
      const applied = await runner({
        dbClient: client,
        dir: migrationsDir,
        direction: "up",
        schema,
        createSchema: true,
        migrationsTable: "pgmigrations",
        log: () => {},
      });
      expect(applied.map((m) => m.name)).toEqual(["1735689600000_create-widgets"]);

      const table = `"${schema}".widgets`;
      const upsert = `
        INSERT INTO ${table} (name, count) VALUES ($1, $2)
        ON CONFLICT (name) DO UPDATE SET count = ${table}.count + EXCLUDED.count, updated_at = now()
        RETURNING id`;
      const first = await client.query<{ id: string }>(upsert, ["gizmo", 2]);
      const second = await client.query<{ id: string }>(upsert, ["gizmo", 3]);
      expect(first.rows[0]?.id).toMatch(/^[0-9a-f-]{36}$/);
      expect(second.rows[0]?.id).toBe(first.rows[0]?.id);

      const rows = await client.query<{ name: string; count: number }>(`SELECT name, count FROM ${table}`);
      expect(rows.rows).toEqual([{ name: "gizmo", count: 5 }]);

      const recorded = await client.query<{ name: string }>(`SELECT name FROM "${schema}".pgmigrations`);
      expect(recorded.rows.map((r) => r.name)).toEqual(["1735689600000_create-widgets"]);
    } finally {
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    }
  });
});

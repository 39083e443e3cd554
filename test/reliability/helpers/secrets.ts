/**
 * Looks for plaintext API keys wherever Turnpike keeps or prints anything: every Redis key of an
 * installation (names and values, whatever the type), every row of its PostgreSQL schema, and the
 * captured output of its processes. Returns where each key was found (empty: nowhere).
 */
import type { Redis } from "ioredis";
import type pg from "pg";

/** Every key of `prefix` with its value, as text. */
export async function redisDump(redis: Redis, prefix: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = "0";
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.scan(cursor, "MATCH", `*${prefix}*`, "COUNT", 1000);
    for (const key of keys) {
      const type = await redis.type(key);
      let value: unknown;
      if (type === "string") value = await redis.get(key);
      else if (type === "hash") value = await redis.hgetall(key);
      else if (type === "zset") value = await redis.zrange(key, 0, -1, "WITHSCORES");
      else if (type === "set") value = await redis.smembers(key);
      else if (type === "list") value = await redis.lrange(key, 0, -1);
      out.push(`${key} ${JSON.stringify(value)}`);
    }
    cursor = next;
    if (cursor === "0") break;
  }
  return out;
}

/** Every row of every table of `schema`, as JSON text. */
export async function postgresDump(pool: pg.Pool, schema: string): Promise<string[]> {
  const tables = await pool.query<{ table_name: string }>(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
    [schema],
  );
  const out: string[] = [];
  for (const { table_name } of tables.rows) {
    const rows = await pool.query(`SELECT * FROM "${schema}"."${table_name}"`);
    for (const row of rows.rows) out.push(`${table_name} ${JSON.stringify(row)}`);
  }
  return out;
}

/** Where each secret occurs among the named texts: `["redis: <line>", ...]`. */
export function findSecrets(
  secrets: readonly string[],
  sources: Record<string, readonly string[]>,
): string[] {
  const found: string[] = [];
  for (const [source, texts] of Object.entries(sources)) {
    for (const text of texts) {
      for (const secret of secrets) {
        if (text.includes(secret))
          found.push(`${source}: ${text.replaceAll(secret, "<API KEY>").slice(0, 300)}`);
      }
    }
  }
  return found;
}

/** Clean-up for tests that give QuotaStore a fresh prefix each. */
import type { Redis } from "ioredis";

/** Deletes every tenant and installation key of the quota prefixes `prefixes`. */
export async function deleteQuotaKeys(redis: Redis, prefixes: string[]): Promise<void> {
  for (const prefix of prefixes) {
    const found = [...(await redis.keys(`tp:{${prefix}/*`)), ...(await redis.keys(`tp:${prefix}:*`))];
    if (found.length) await redis.del(...found);
  }
}

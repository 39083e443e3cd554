/**
 * API keys the gateway resolved recently, so a busy client's key costs Redis one look-up per TTL
 * instead of one per request. Only keys that resolved are kept: a new key works at once, and an
 * unknown one is always looked up. A removed or rotated key keeps working on a gateway that cached
 * it for at most the TTL (TURNPIKE_API_KEY_CACHE_MS; 0 turns the cache off). Entries are keyed by
 * the key's SHA-256, so no secret is held beyond the request that carried it.
 */
import { createHash } from "node:crypto";

/** More distinct keys than this within one TTL start the cache over (bounded memory). */
const MAX_ENTRIES = 10_000;

/** See the module comment. */
export class ApiKeyCache {
  private readonly entries = new Map<string, { tenant: string; until: number }>();

  constructor(private readonly ttlMs: number) {}

  /** The tenant `apiKey` resolved to less than the TTL ago, else undefined. */
  get(apiKey: string, now = Date.now()): string | undefined {
    if (this.ttlMs <= 0) return undefined;
    const id = digest(apiKey);
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (entry.until > now) return entry.tenant;
    this.entries.delete(id);
    return undefined;
  }

  /** Remembers that `apiKey` resolved to `tenant` just now. */
  set(apiKey: string, tenant: string, now = Date.now()): void {
    if (this.ttlMs <= 0) return;
    if (this.entries.size >= MAX_ENTRIES) this.entries.clear();
    this.entries.set(digest(apiKey), { tenant, until: now + this.ttlMs });
  }
}

function digest(apiKey: string): string {
  return createHash("sha256").update(apiKey).digest("base64");
}

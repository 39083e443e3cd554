/**
 * Where a request's state is read from: the collector's PostgreSQL record once it exists, else the
 * gateway's own "queued" marker in Redis. Both are scoped by tenant: another tenant's request reads
 * as absent, so its existence does not leak.
 */
import type { Redis } from "ioredis";
import { requestTenantKey, type Target } from "../shared/contracts/index.js";
import type { RequestRecord, RequestRecords } from "../shared/db/index.js";
import { ApiError } from "./errors.js";
import type { PendingRequest, RequestState } from "./views.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for a syntactically valid request id (the gateway issues UUIDs). */
export function isRequestId(id: string): boolean {
  return UUID.test(id);
}

/** Reads and writes request state for the gateway. */
export class RequestStates {
  constructor(
    private readonly redis: Redis,
    private readonly records: RequestRecords,
    private readonly prefix: string,
    private readonly ttlSeconds: number,
  ) {}

  /**
   * Records that the gateway accepted `id` (before publishing, so a retry or GET can see it), and
   * again with `published` once the task is confirmed on its queue.
   */
  async markQueued(
    id: string,
    tenant: string,
    target: Target,
    submittedAt: number,
    published = false,
  ): Promise<void> {
    const pending: PendingRequest = {
      tenant,
      target,
      status: "queued",
      submittedAt,
      ...(published ? { published } : {}),
    };
    await this.redis.set(requestTenantKey(this.prefix, id), JSON.stringify(pending), "EX", this.ttlSeconds);
  }

  /** Forgets a request that was never enqueued. */
  async forget(id: string): Promise<void> {
    await this.redis.del(requestTenantKey(this.prefix, id));
  }

  /** The state of `id` as `tenant` may see it; undefined when absent or another tenant's. */
  async read(id: string, tenant: string): Promise<RequestState | undefined> {
    if (!isRequestId(id)) return undefined;
    let record: RequestRecord | undefined;
    let raw: string | null;
    try {
      record = await this.records.get(id);
      raw = record ? null : await this.redis.get(requestTenantKey(this.prefix, id));
    } catch (cause) {
      throw new ApiError(
        "service_unavailable",
        "request state is unavailable right now; retry",
        { "retry-after": 2 },
        {
          cause,
        },
      );
    }
    if (record) return record.tenant === tenant ? { kind: "record", id: record.id, record } : undefined;
    if (!raw) return undefined;
    const pending = parsePending(raw);
    return pending && pending.tenant === tenant
      ? { kind: "pending", id: id.toLowerCase(), pending }
      : undefined;
  }
}

function parsePending(raw: string): PendingRequest | undefined {
  try {
    const value = JSON.parse(raw) as Partial<PendingRequest>;
    if (typeof value.tenant !== "string" || typeof value.submittedAt !== "number") return undefined;
    const target: Target =
      typeof value.target === "object" && value.target
        ? value.target
        : { kind: "model", name: String(value.target ?? "") };
    return {
      tenant: value.tenant,
      target,
      status: value.status ?? "queued",
      submittedAt: value.submittedAt,
      ...(value.published === true ? { published: true } : {}),
    };
  } catch {
    return undefined;
  }
}

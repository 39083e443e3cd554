/**
 * What must hold after a fault, read from where the truth lives: the request records in
 * PostgreSQL, tenant_usage, and the quota windows and reservations in Redis.
 * - every accepted request has exactly one final record (lost = accepted without one);
 * - no logical request ran twice (duplicated = more than one record traced to one Idempotency-Key,
 *   or one key answered with two request ids);
 * - tokens: Redis day window == PostgreSQL tenant_usage == sum of charged_tokens of the records,
 *   no reservation left "reserved", no in-flight slot left;
 * - no tenant charged beyond its tokensPerDay, ever (sampled during the run, and at the end).
 */
import type { Installation } from "./installation.js";
import { seqOfOutputs, type LogicalRequest, type Traffic } from "./traffic.js";

export interface AuditResult {
  /** Logical requests sent, and how many of them were accepted. */
  requests: number;
  accepted: number;
  records: number;
  lost: number;
  duplicated: number;
  /** Refused or abandoned requests that nevertheless ran (the client was told they did not). */
  phantoms: number;
  /** Records that no logical request of this test explains. */
  unexplained: number;
  /** Sum of absolute token discrepancies between Redis, tenant_usage and the records. */
  tokensWrong: number;
  /** Reservations still held (in-flight slots plus reservations in state "reserved"). */
  leftReserved: number;
  /** Tenants whose charged tokens exceeded tokensPerDay (at the end or in any sample). */
  quotaExceeded: number;
  failedRecords: number;
  /** Logical requests whose client retried until its deadline without ever being accepted. */
  gaveUp: number;
  problems: string[];
}

interface RecordRow {
  id: string;
  tenant: string;
  target: string;
  status: string;
  charged: number;
  outputs: unknown;
}

async function records(inst: Installation): Promise<RecordRow[]> {
  const answer = await inst.pool.query<RecordRow>(
    `SELECT id::text AS id, tenant, target, status, charged_tokens::float8 AS charged, outputs
     FROM "${inst.schema}".requests`,
  );
  return answer.rows;
}

/** Polls until every id in `ids` has a final record; returns the ids still missing. */
export async function waitForRecords(
  inst: Installation,
  ids: Iterable<string>,
  timeoutMs: number,
): Promise<string[]> {
  const wanted = new Set(ids);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let missing: string[] = [];
    try {
      const answer = await inst.pool.query<{ id: string }>(
        `SELECT id::text AS id FROM "${inst.schema}".requests WHERE status IN ('succeeded', 'failed')`,
      );
      const have = new Set(answer.rows.map((r) => r.id));
      missing = [...wanted].filter((id) => !have.has(id));
    } catch {
      missing = [...wanted]; // PostgreSQL restarting
    }
    if (missing.length === 0 || Date.now() > deadline) return missing;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Waits until no tenant has an in-flight reservation (every accepted request settled). */
export async function waitForSettled(inst: Installation, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const flights = await Promise.all(
      inst.tenants.map((t) => inst.quota.usage(t.name).catch(() => undefined)),
    );
    if (flights.every((u) => u && u.inFlight === 0)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/** Samples every tenant's day window during a run, remembering the highest value seen. */
export class QuotaSampler {
  readonly max = new Map<string, number>();
  private timer: NodeJS.Timeout;

  constructor(private readonly inst: Installation) {
    this.timer = setInterval(() => void this.sample(), 100);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private async sample(): Promise<void> {
    for (const t of this.inst.tenants) {
      const usage = await this.inst.quota.usage(t.name).catch(() => undefined);
      if (usage) this.max.set(t.name, Math.max(this.max.get(t.name) ?? 0, usage.tokensToday));
    }
  }
}

/** Checks every invariant; `extra` are further logical requests (e.g. probes of another Traffic). */
export async function audit(
  inst: Installation,
  traffic: Traffic,
  sampler?: QuotaSampler,
  extra: Traffic[] = [],
): Promise<AuditResult> {
  const all: LogicalRequest[] = [traffic, ...extra].flatMap((t) => t.requests);
  const bySeq = new Map<number, LogicalRequest[]>();
  for (const r of all) bySeq.set(r.seq, [...(bySeq.get(r.seq) ?? []), r]);
  const problems: string[] = [];
  const rows = await records(inst);
  const byId = new Map(rows.map((r) => [r.id, r] as const));

  const accepted = all.filter((r) => r.outcome === "accepted");
  const gaveUp = all.filter((r) => r.outcome === "gave-up");
  for (const r of gaveUp.slice(0, 5))
    problems.push(`key ${r.key} was never accepted (${r.attempts} attempts)`);
  let lost = 0;
  let duplicated = 0;
  for (const r of accepted) {
    if (r.ids.size > 1) {
      duplicated++;
      problems.push(`key ${r.key} was answered with ${r.ids.size} request ids`);
    }
    for (const id of r.ids) {
      const row = byId.get(id);
      if (!row || (row.status !== "succeeded" && row.status !== "failed")) {
        lost++;
        if (lost <= 5) problems.push(`accepted request ${id} (key ${r.key}) has no final record`);
      }
    }
  }

  // Trace every echo record back to its logical request through the echoed sequence number.
  const ranFor = new Map<LogicalRequest, number>();
  let phantoms = 0;
  let unexplained = 0;
  for (const row of rows) {
    if (row.target !== "echo") continue;
    const seq = seqOfOutputs(row.outputs);
    const candidates = seq === undefined ? [] : (bySeq.get(seq) ?? []);
    const owner =
      candidates.find((c) => c.ids.has(row.id)) ?? (candidates.length === 1 ? candidates[0] : undefined);
    if (!owner) {
      unexplained++;
      if (unexplained <= 5) problems.push(`record ${row.id} (seq ${seq}) belongs to no logical request`);
      continue;
    }
    ranFor.set(owner, (ranFor.get(owner) ?? 0) + 1);
    if (owner.outcome !== "accepted") {
      phantoms++;
      if (phantoms <= 5)
        problems.push(
          `record ${row.id}: key ${owner.key} was ${owner.outcome} (${owner.refusal}) yet it ran`,
        );
    }
  }
  for (const [owner, count] of ranFor) {
    if (count > 1 && owner.ids.size <= 1) {
      duplicated++;
      if (duplicated <= 5) problems.push(`key ${owner.key} ran ${count} times`);
    }
  }

  // Tokens: the three ledgers must agree, and nothing may stay reserved.
  let tokensWrong = 0;
  let leftReserved = 0;
  let quotaExceeded = 0;
  const usage = await inst.pool.query<{ tenant: string; tokens: number; requests: number }>(
    `SELECT tenant, sum(tokens)::float8 AS tokens, sum(requests)::float8 AS requests
     FROM "${inst.schema}".tenant_usage GROUP BY tenant`,
  );
  for (const t of inst.tenants) {
    const mine = rows.filter((r) => r.tenant === t.name);
    const charged = mine.reduce((s, r) => s + r.charged, 0);
    const redis = await inst.quota.usage(t.name);
    const pg = usage.rows.find((u) => u.tenant === t.name);
    const reserved = await reservationsHeld(inst, t.name);
    if (redis.tokensToday !== charged) {
      tokensWrong += Math.abs(redis.tokensToday - charged);
      problems.push(`${t.name}: Redis day window ${redis.tokensToday} != charged in records ${charged}`);
    }
    if ((pg?.tokens ?? 0) !== charged || (pg?.requests ?? 0) !== mine.length) {
      tokensWrong += Math.abs((pg?.tokens ?? 0) - charged);
      problems.push(
        `${t.name}: tenant_usage ${pg?.tokens ?? 0} tokens / ${pg?.requests ?? 0} requests != records ${charged} / ${mine.length}`,
      );
    }
    if (redis.inFlight > 0 || reserved.count > 0) {
      leftReserved += Math.max(redis.inFlight, reserved.count);
      problems.push(`${t.name}: ${redis.inFlight} in flight, ${reserved.count} reservations still held`);
    }
    const limit = t.limits.tokensPerDay;
    const peak = Math.max(charged, sampler?.max.get(t.name) ?? 0);
    if (limit !== undefined && peak > limit) {
      quotaExceeded++;
      problems.push(`${t.name}: ${peak} tokens charged against a limit of ${limit}`);
    }
  }

  return {
    requests: all.length,
    accepted: accepted.length,
    records: rows.length,
    lost,
    duplicated,
    phantoms,
    unexplained,
    tokensWrong,
    leftReserved,
    quotaExceeded,
    failedRecords: rows.filter((r) => r.status === "failed").length,
    gaveUp: gaveUp.length,
    problems,
  };
}

/** Reservations of a tenant still in state "reserved" (SCAN over its hash-tagged keys). */
async function reservationsHeld(inst: Installation, tenant: string): Promise<{ count: number }> {
  const pattern = `tp:{${inst.prefix}/${tenant}}:res:*`;
  let cursor = "0";
  let count = 0;
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await inst.redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length > 0) {
      const pipeline = inst.redis.pipeline();
      for (const key of keys) pipeline.hget(key, "state");
      const states = (await pipeline.exec()) ?? [];
      count += states.filter(([, state]) => state === "reserved").length;
    }
    cursor = next;
    if (cursor === "0") break;
  }
  return { count };
}

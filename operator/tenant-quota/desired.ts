/**
 * What a TenantQuota asks for (pure): the tenant's limits, the Secret keys holding its API keys,
 * the hashes those keys resolve to, and the status that reports both. API keys exist here only as
 * SHA-256 hashes; a problem names the Secret and key, never the value.
 */
import type { TenantQuota, TenantQuotaSpec, TenantQuotaStatus } from "../api/index.js";
import { hashApiKey, type TenantLimits, type TenantUsage } from "../../runtime/shared/quota/index.js";
import { QUOTA_LIMIT_NAMES } from "../../runtime/shared/quota/index.js";
import { degradedConditions, readyConditions, type ConditionInput } from "../shared/conditions.js";

/** The Secret key default of `secretRef.key` (docs/api.md). */
export const DEFAULT_SECRET_KEY = "apiKey";

/** One API key of the tenant, by reference. */
export interface ApiKeyRef {
  /** spec.apiKeys[].name */
  name: string;
  secret: string;
  key: string;
}

export interface DesiredTenant {
  tenant: string;
  limits: TenantLimits;
  apiKeys: ApiKeyRef[];
  /** Names of the Secrets to read, each once. */
  secrets: string[];
}

export function desiredTenant(spec: TenantQuotaSpec): DesiredTenant {
  const limits: TenantLimits = {};
  for (const name of QUOTA_LIMIT_NAMES) {
    const value = spec.limits[name];
    if (value !== undefined) limits[name] = value;
  }
  const apiKeys = (spec.apiKeys ?? []).map((k) => ({
    name: k.name,
    secret: k.secretRef.name,
    key: k.secretRef.key ?? DEFAULT_SECRET_KEY,
  }));
  return { tenant: spec.tenant, limits, apiKeys, secrets: [...new Set(apiKeys.map((k) => k.secret))].sort() };
}

/** A reason why an API key is not published; its message names Secret and key only. */
export interface KeyProblem {
  reason: "SecretNotFound" | "SecretKeyNotFound" | "EmptyAPIKey" | "APIKeyInUse";
  message: string;
}

export interface ResolvedKeys {
  /** Sorted, unique SHA-256 hashes to publish. */
  hashes: string[];
  problems: KeyProblem[];
}

/**
 * Hashes every API key from the Secrets' `data` (base64, as the apiserver returns it; a missing
 * Secret is undefined). Surrounding whitespace is dropped (a key file often ends in a newline; an
 * HTTP header cannot carry it). `takenBy` maps hashes already published for another tenant that
 * still has a TenantQuota: those are reported instead of being taken over.
 */
export function resolveApiKeys(
  refs: readonly ApiKeyRef[],
  secrets: ReadonlyMap<string, { data?: Record<string, string> } | undefined>,
  takenBy: ReadonlyMap<string, string> = new Map(),
): ResolvedKeys {
  const hashes = new Set<string>();
  const problems: KeyProblem[] = [];
  for (const ref of refs) {
    const where = `(API key ${ref.name})`;
    const secret = secrets.get(ref.secret);
    if (!secret) {
      problems.push({ reason: "SecretNotFound", message: `Secret ${ref.secret} not found ${where}` });
      continue;
    }
    const encoded = secret.data?.[ref.key];
    if (encoded === undefined) {
      problems.push({
        reason: "SecretKeyNotFound",
        message: `Secret ${ref.secret} has no key ${ref.key} ${where}`,
      });
      continue;
    }
    const plaintext = Buffer.from(encoded, "base64").toString("utf8").trim();
    if (plaintext.length === 0) {
      problems.push({
        reason: "EmptyAPIKey",
        message: `Secret ${ref.secret} key ${ref.key} is empty ${where}`,
      });
      continue;
    }
    const hash = hashApiKey(plaintext);
    const owner = takenBy.get(hash);
    if (owner !== undefined) {
      problems.push({
        reason: "APIKeyInUse",
        message: `the key in Secret ${ref.secret} key ${ref.key} is already published for tenant ${owner} ${where}`,
      });
      continue;
    }
    hashes.add(hash);
  }
  return { hashes: [...hashes].sort(), problems };
}

/** The conditions of a quota whose keys resolved (with `problems`) and were published. */
export function quotaConditions(
  generation: number,
  tenant: string,
  published: number,
  problems: readonly KeyProblem[],
  suspended: boolean,
): ConditionInput[] {
  if (problems.length > 0) {
    const message =
      `${problems.map((p) => p.message).join("; ")}. ` +
      `${published} other API key${published === 1 ? " is" : "s are"} published.`;
    return degradedConditions(generation, problems[0]!.reason, message);
  }
  const keys = `${published} API key${published === 1 ? "" : "s"}`;
  if (suspended) {
    return readyConditions(
      generation,
      `tenant ${tenant} is suspended: every request is refused (${keys} kept)`,
      "Suspended",
    );
  }
  return readyConditions(generation, `${keys} and the limits of tenant ${tenant} are published`);
}

type Usage = NonNullable<TenantQuotaStatus["usage"]>;

/** Kubernetes-style timestamp (seconds precision). */
export function timestamp(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, "Z");
}

/**
 * status.usage and status.usedPercent from the counters. updatedAt moves only when a number
 * changed, so an idle tenant's status stays byte-identical and a resync writes nothing.
 */
export function usageStatus(
  usage: Pick<
    TenantUsage,
    "tokensThisMonth" | "tokensToday" | "tokensThisMinute" | "requestsThisMinute" | "inFlight"
  >,
  limits: TenantLimits,
  previous: Usage | undefined,
  now: Date,
): { usage: Record<string, unknown>; usedPercent?: number } {
  const numbers = {
    tokensThisMonth: usage.tokensThisMonth,
    tokensToday: usage.tokensToday,
    tokensThisMinute: usage.tokensThisMinute,
    requestsThisMinute: usage.requestsThisMinute,
    inFlight: usage.inFlight,
  };
  const unchanged =
    previous?.updatedAt !== undefined &&
    (Object.keys(numbers) as (keyof typeof numbers)[]).every((k) => previous[k] === numbers[k]);
  const updatedAt = unchanged ? String(previous.updatedAt) : timestamp(now);
  const result: { usage: Record<string, unknown>; usedPercent?: number } = {
    usage: { ...numbers, updatedAt },
  };
  if (limits.tokensPerDay) result.usedPercent = Math.floor((usage.tokensToday * 100) / limits.tokensPerDay);
  return result;
}

/** The TenantQuota that owns `tenant` in its namespace: the oldest live one (then by name). */
export function tenantOwner(quotas: readonly TenantQuota[], tenant: string): TenantQuota | undefined {
  return quotas
    .filter((q) => q.spec?.tenant === tenant && !q.metadata?.deletionTimestamp)
    .sort((a, b) => {
      const ta = String(a.metadata?.creationTimestamp ?? "");
      const tb = String(b.metadata?.creationTimestamp ?? "");
      return ta === tb ? (a.metadata?.name ?? "").localeCompare(b.metadata?.name ?? "") : ta < tb ? -1 : 1;
    })[0];
}

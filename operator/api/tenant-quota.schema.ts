/**
 * TenantQuota: who may call which models, with which API keys, and how many tokens and requests
 * they may spend per window. Source of truth for crds/tenantquotas.turnpike.dev.yaml (run
 * `npm run gen:crds` after editing).
 */
import { TENANT_QUOTA_KIND } from "../shared/names.js";
import { TENANT_PRIORITIES } from "../../runtime/shared/contracts/index.js";
import {
  ageColumn,
  bool,
  conditions,
  customResourceDefinition,
  DNS_LABEL_PATTERN,
  dnsLabel,
  int,
  int32,
  list,
  obj,
  observedGeneration,
  positive,
  rootSchema,
  rule,
  secretKeyRef,
  str,
  type Schema,
} from "./common.schema.js";

export { TENANT_PRIORITIES };

const apiKey: Schema = obj(
  "One API key of the tenant. The key itself stays in the Secret: the operator publishes only its " +
    "SHA-256 hash to the gateway. Several keys allow rotation without downtime.",
  {
    name: dnsLabel("Name of the key, unique within the TenantQuota; shows up in request records and logs."),
    secretRef: secretKeyRef("The Secret key holding the API key (default key `apiKey`)."),
  },
  { required: ["name", "secretRef"] },
);

const limitFields = [
  "tokensPerMonth",
  "tokensPerDay",
  "tokensPerMinute",
  "requestsPerMinute",
  "concurrentRequests",
] as const;

const limits: Schema = obj(
  "Limits the gateway enforces atomically across all of its replicas; a request that would exceed " +
    "any of them is refused with 429. Unset limits do not apply; at least one must be set.",
  {
    tokensPerMonth: positive(
      "Tokens the tenant may spend per UTC calendar month (the window resets at 00:00 UTC on the 1st).",
    ),
    tokensPerDay: positive("Tokens the tenant may spend per UTC day."),
    tokensPerMinute: positive("Tokens the tenant may spend per minute."),
    requestsPerMinute: positive("Requests the tenant may submit per minute.", 100_000_000),
    concurrentRequests: positive("Requests the tenant may have queued or running at once.", 1_000_000),
  },
  {
    "x-kubernetes-validations": [
      rule(
        limitFields.map((f) => `has(self.${f})`).join(" || "),
        `limits must set at least one of ${limitFields.join(", ")}`,
      ),
      rule(
        "!has(self.tokensPerDay) || !has(self.tokensPerMinute) || self.tokensPerMinute <= self.tokensPerDay",
        "limits.tokensPerMinute must not exceed limits.tokensPerDay",
      ),
      rule(
        "!has(self.tokensPerMonth) || !has(self.tokensPerDay) || self.tokensPerDay <= self.tokensPerMonth",
        "limits.tokensPerDay must not exceed limits.tokensPerMonth",
      ),
    ],
  },
);

const spec: Schema = obj(
  "Desired quota of one tenant.",
  {
    tenant: str(
      "Tenant identifier (an RFC 1123 label) that requests, records and quota counters are keyed by. " +
        "Immutable: changing it would orphan the tenant's usage history.",
      {
        minLength: 1,
        maxLength: 63,
        pattern: DNS_LABEL_PATTERN,
        "x-kubernetes-validations": [
          rule("self == oldSelf", "tenant is immutable; create a new TenantQuota instead"),
        ],
      },
    ),
    apiKeys: list("API keys that authenticate as this tenant.", apiKey, {
      maxItems: 16,
      "x-kubernetes-list-type": "map",
      "x-kubernetes-list-map-keys": ["name"],
    }),
    limits,
    models: list(
      "Names of InferenceModels and Pipelines in this namespace the tenant may call. Empty: all of them.",
      dnsLabel("Name of an InferenceModel or Pipeline."),
      { maxItems: 64, "x-kubernetes-list-type": "set" },
    ),
    priority: str(
      "Which of the tenants with requests waiting for the same model starts first. Each worker " +
        "starts waiting requests by priority, strictly but with a floor: `high` before `normal` " +
        "before `low`, except that a priority with requests waiting that has been passed over 9 " +
        "times in a row gets the next start (two due at once: the lower first), so waiting `low` " +
        "work gets at least one start in every 10 (every 11 when both `high` and `normal` " +
        "compete). A request also goes before lower-priority ones already waiting for the next " +
        "batch, by at most one batch (one passed over that way goes first the next time); a " +
        "running batch is never pre-empted.",
      { enum: [...TENANT_PRIORITIES], default: "normal" },
    ),
    weight: int32(
      "The tenant's share of a model among tenants of the same priority that have requests " +
        "waiting for it: each worker starts their requests in proportion to their weights (counted " +
        "in rows, i.e. dimension 0 of the request's first input), whatever their submission rates " +
        "(weighted fair queueing). A tenant without waiting requests earns no credit.",
      { minimum: 1, maximum: 1000, default: 1 },
    ),
    maxQueuedPerModel: positive(
      "Requests the tenant may have waiting or running per model or pipeline; one more is refused " +
        "with 429 `tenant_backlog_full`, so one tenant cannot fill a model's queue for the others. " +
        "Unset: no per-tenant bound (the model's spec.queue.maxLength still applies, per tenant).",
      1_000_000,
    ),
    suspend: bool("Refuse every request of the tenant (403) without deleting its keys or usage.", {
      default: false,
    }),
  },
  { required: ["tenant", "limits"] },
);

const status: Schema = obj("Observed state of the quota, written by the operator.", {
  observedGeneration,
  conditions: conditions(
    "`Ready` (keys are published and limits enforced) and `Degraded` (e.g. a referenced Secret or key " +
      "is missing; see its message).",
  ),
  usage: obj("Usage in the current windows, refreshed periodically by the operator.", {
    tokensThisMonth: int("Tokens spent since 00:00 UTC on the 1st of this month.", { minimum: 0 }),
    tokensToday: int("Tokens spent since 00:00 UTC.", { minimum: 0 }),
    tokensThisMinute: int("Tokens spent in the current minute.", { minimum: 0 }),
    requestsThisMinute: int("Requests submitted in the current minute.", { minimum: 0 }),
    inFlight: int("Requests queued or running now.", { minimum: 0 }),
    updatedAt: str("When the usage was read.", { format: "date-time" }),
  }),
  usedPercent: int32(
    "tokensToday as a percentage of limits.tokensPerDay, rounded down (unset when there is no daily limit).",
    { minimum: 0 },
  ),
  apiKeys: int32("API keys currently published to the gateway.", { minimum: 0 }),
});

export const tenantQuotaCrd = customResourceDefinition({
  names: { kind: TENANT_QUOTA_KIND, plural: "tenantquotas", singular: "tenantquota", shortNames: ["tq"] },
  schema: rootSchema(
    "TenantQuota gives one tenant API keys and token and request limits for the models in its " +
      "namespace.",
    spec,
    status,
  ),
  printerColumns: [
    { name: "Tenant", type: "string", jsonPath: ".spec.tenant", description: "Tenant identifier." },
    {
      name: "Tokens today",
      type: "integer",
      jsonPath: ".status.usage.tokensToday",
      description: "Tokens spent since 00:00 UTC.",
    },
    {
      name: "Limit",
      type: "integer",
      jsonPath: ".spec.limits.tokensPerDay",
      description: "Tokens allowed per day.",
    },
    {
      name: "Used %",
      type: "integer",
      jsonPath: ".status.usedPercent",
      description: "Share of the daily token limit spent.",
    },
    {
      name: "Suspended",
      type: "boolean",
      jsonPath: ".spec.suspend",
      description: "Whether the tenant is suspended.",
      priority: 1,
    },
    {
      name: "Priority",
      type: "string",
      jsonPath: ".spec.priority",
      description: "Which waiting requests start first: high, then normal, then low (with a floor).",
      priority: 1,
    },
    ageColumn,
  ],
});

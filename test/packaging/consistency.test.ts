/**
 * The chart and the kustomize base describe the same system: their copies are up to date
 * (`npm run gen:packaging`), the chart's operator matches config/operator (RBAC rules exactly),
 * its gateway and collector match config/runtime, and the NetworkPolicies select the pods they are
 * about, the operator's worker pods included (from the operator's golden files).
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../harness/kube.js";
import { packagingCopies, staleCopies } from "../../hack/sync-manifests.js";
import { containersOf, helmTemplate, kustomize, parseManifests, podSpecs, type Manifest } from "./tools.js";

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

const find = (objects: readonly Manifest[], kind: string, name: string): Any => {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered`);
  return found;
};
const container = (deployment: Any) => deployment.spec.template.spec.containers[0];
const envByName = (c: Any) => Object.fromEntries((c.env ?? []).map((e: Any) => [e.name, e]));
const mountPaths = (c: Any) => (c.volumeMounts ?? []).map((m: Any) => m.mountPath).sort();
const probe = (p: Any) => ({ path: p?.httpGet?.path, port: p?.httpGet?.port, scheme: p?.httpGet?.scheme });

describe("packaging copies (npm run gen:packaging)", () => {
  it("are up to date with their sources", () => {
    const copies = packagingCopies(repoRoot);
    const stale = [...copies].filter(
      ([path, text]) =>
        !existsSync(join(repoRoot, path)) || readFileSync(join(repoRoot, path), "utf8") !== text,
    );
    expect(stale.map(([path]) => path)).toEqual([]);
    expect(staleCopies(repoRoot, copies)).toEqual([]);
  });
});

describe("chart and kustomize base agree", () => {
  let helm: Manifest[];
  let base: Manifest[];
  let operatorDir: Manifest[];

  beforeAll(async () => {
    helm = parseManifests(await helmTemplate("turnpike", "turnpike"));
    base = parseManifests(await kustomize());
    operatorDir = parseManifests(
      ["rbac.yaml", "deployment.yaml"]
        .map((f) => readFileSync(join(repoRoot, "config/operator", f), "utf8"))
        .join("\n---\n"),
    );
  }, 900_000);

  it("gives the operator exactly the RBAC rules of config/operator/rbac.yaml", () => {
    expect(find(helm, "ClusterRole", "turnpike-operator").rules).toEqual(
      find(operatorDir, "ClusterRole", "turnpike-operator").rules,
    );
    expect(find(helm, "Role", "turnpike-operator-pepr-store").rules).toEqual(
      find(operatorDir, "Role", "turnpike-operator-pepr-store").rules,
    );
    const binding = find(helm, "ClusterRoleBinding", "turnpike-operator");
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "turnpike-operator", namespace: "turnpike" },
    ]);
  });

  it("runs the operator like config/operator/deployment.yaml does", () => {
    const fromChart = container(find(helm, "Deployment", "turnpike-operator"));
    const fromDir = container(find(operatorDir, "Deployment", "turnpike-operator"));
    expect(Object.keys(envByName(fromChart))).toEqual(
      expect.arrayContaining(Object.keys(envByName(fromDir))),
    );
    expect(fromChart.envFrom).toEqual(fromDir.envFrom);
    expect(fromChart.ports).toEqual(fromDir.ports);
    expect(probe(fromChart.readinessProbe)).toEqual(probe(fromDir.readinessProbe));
    expect(probe(fromChart.livenessProbe)).toEqual(probe(fromDir.livenessProbe));
    expect(mountPaths(fromChart)).toEqual(mountPaths(fromDir));
    expect(fromChart.command).toBeUndefined(); // the image's ENTRYPOINT: node /app/dist/operator/main.js
    expect(envByName(fromChart).TURNPIKE_RUNTIME_IMAGE.value).toBe(
      "ghcr.io/turnpike-dev/turnpike-runtime:0.1.0",
    );
  });

  it.each(["gateway", "collector"])("runs the %s like config/runtime does", (role) => {
    const fromChart = container(find(helm, "Deployment", `turnpike-${role}`));
    const fromBase = container(find(base, "Deployment", `turnpike-${role}`));
    expect(fromChart.args).toEqual([role]);
    expect(fromChart.args).toEqual(fromBase.args);
    expect(envByName(fromChart)).toEqual(envByName(fromBase));
    expect(fromChart.ports).toEqual(fromBase.ports);
    expect(probe(fromChart.readinessProbe)).toEqual(probe(fromBase.readinessProbe));
    expect(probe(fromChart.livenessProbe)).toEqual(probe(fromBase.livenessProbe));
    expect(mountPaths(fromChart)).toEqual(mountPaths(fromBase));
    expect(fromChart.resources).toEqual(fromBase.resources);
    // Both read the runtime ConfigMap the operator renders (operator/shared/names.ts).
    const volumes = find(helm, "Deployment", `turnpike-${role}`).spec.template.spec.volumes;
    expect(volumes).toContainEqual({ name: "runtime-config", configMap: { name: "turnpike-runtime" } });
  });
});

/** Whether a label selector (matchLabels only) selects pods with these labels. */
const selects = (selector: Any, labels: Record<string, string>) =>
  Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
  (selector.matchExpressions ?? []).length === 0;

/** The worker pod templates the operator renders (its golden files), if that suite has them. */
function operatorWorkerPods(): { name: string; labels: Record<string, string> }[] {
  const dir = join(repoRoot, "test/operator/golden/inference-model");
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => parseManifests(readFileSync(join(dir, f), "utf8")))
    .filter((o) => o.kind === "Deployment")
    .map((o) => ({ name: o.metadata.name, labels: (o as Any).spec.template.metadata.labels }));
}

describe.each([
  ["Helm chart", () => helmTemplate("turnpike", "turnpike")],
  ["kustomize base", () => kustomize()],
])("NetworkPolicies of the %s", (_name, render) => {
  let objects: Manifest[];
  let policies: Any[];

  beforeAll(async () => {
    objects = parseManifests(await render());
    policies = objects.filter((o) => o.kind === "NetworkPolicy");
  }, 900_000);

  const policyFor = (labels: Record<string, string>) => {
    const matching = policies.filter((p) => selects(p.spec.podSelector, labels));
    expect(matching).toHaveLength(1);
    return matching[0];
  };
  const ports = (rules: Any[]) =>
    rules.flatMap((r: Any) => (r.ports ?? []).map((p: Any) => `${p.port}/${p.protocol}`)).sort();

  it("let anyone reach the gateway on 8080, and the gateway only DNS, RabbitMQ, Redis, PostgreSQL", () => {
    const pod = podSpecs(objects).find((p) => p.owner.endsWith("-gateway"))!;
    const deployment = find(objects, "Deployment", pod.owner.split("/")[1]!);
    const policy = policyFor(deployment.spec.template.metadata.labels);
    expect(policy.spec.policyTypes).toEqual(["Ingress", "Egress"]);
    expect(policy.spec.ingress).toEqual([{ ports: [{ port: 8080, protocol: "TCP" }] }]);
    expect(ports(policy.spec.egress)).toEqual(["53/TCP", "53/UDP", "5432/TCP", "5672/TCP", "6379/TCP"]);
    expect(containersOf(pod.spec)[0]!.ports).toEqual([
      { name: "http", containerPort: 8080, protocol: "TCP" },
    ]);
  });

  it("let only the monitoring namespace scrape the collector, and the collector reach its services", () => {
    const deployment = objects.find((o) => o.kind === "Deployment" && o.metadata.name.endsWith("-collector"));
    const policy = policyFor((deployment as Any).spec.template.metadata.labels);
    expect(policy.spec.ingress).toEqual([
      {
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } }],
        ports: [{ port: 8080, protocol: "TCP" }],
      },
    ]);
    expect(ports(policy.spec.egress)).toEqual(["53/TCP", "53/UDP", "5432/TCP", "5672/TCP", "6379/TCP"]);
  });

  it("cover the operator's worker pods: metrics from monitoring only, egress to RabbitMQ and Redis", () => {
    const workers = operatorWorkerPods();
    const selector = policies.find((p) => p.metadata.name.endsWith("-workers")).spec.podSelector;
    for (const worker of workers) expect(selects(selector, worker.labels), worker.name).toBe(true);
    const policy = policies.find((p) => p.metadata.name.endsWith("-workers"));
    expect(policy.spec.ingress[0].from).toEqual([
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } } },
    ]);
    expect(ports(policy.spec.egress)).toEqual(["53/TCP", "53/UDP", "5672/TCP", "6379/TCP"]);
    // No policy selects the operator or anything else by accident.
    const gatewayOrCollector = policies.filter((p) => !p.metadata.name.endsWith("-workers"));
    for (const worker of workers) {
      for (const p of gatewayOrCollector) expect(selects(p.spec.podSelector, worker.labels)).toBe(false);
    }
  });
});

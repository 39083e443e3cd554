/**
 * The Helm chart (config/helm/turnpike) and the kustomize base (config/kustomize/base): rendered
 * with the real tools (helm built from its Go module, kubectl kustomize 1.34), applied with a
 * server-side dry run to the real apiserver of the test harness (which validates every object
 * against its schema, the CRDs included, and runs admission: PodSecurity "restricted" warnings fail
 * the test), and checked for hardened pods and for credentials that only come from Secrets.
 * ServiceMonitor and PrometheusRule objects are rendered and checked but not applied: the harness
 * does not install the Prometheus Operator's CRDs.
 */
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import yaml from "js-yaml";
import { createNamespace, deleteNamespace, kubectlOk, repoRoot } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";
import { plaintextSecretProblems, podSecurityProblems, valuesSecretProblems } from "./policy.js";
import {
  CHART_DIR,
  dryRunApply,
  helmBinary,
  helmTemplate,
  kustomize,
  parseManifests,
  PROMETHEUS_OPERATOR_KINDS,
  renameNamespaces,
  type Manifest,
} from "./tools.js";

const ALL_FEATURES = [
  "--set",
  [
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.grafanaDashboard.enabled=true",
    "gateway.autoscaling.enabled=true",
    "operator.prometheusUrl=http://prometheus-operated.monitoring.svc:9090",
    "networkPolicy.rabbitmq.to[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=rabbitmq",
  ].join(","),
];

const ids = (objects: readonly Manifest[]) => objects.map((o) => `${o.kind}/${o.metadata.name}`).sort();
/** Asserts that `objects` hold every CRD of crds/ and Pepr's store CRD; returns their names. */
function expectAllCrds(objects: readonly Manifest[]): string[] {
  const crds = objects.filter((o) => o.kind === "CustomResourceDefinition").map((o) => o.metadata.name);
  expect(crds.sort()).toEqual([...crdNames(), "peprstores.pepr.dev"].sort());
  return crds;
}

/** What every packaging (Helm chart, kustomize base) installs: the operator, its RBAC, the runtime. */
const CORE_OBJECTS = [
  "ClusterRole/turnpike-operator",
  "ClusterRoleBinding/turnpike-operator",
  "Deployment/turnpike-collector",
  "Deployment/turnpike-gateway",
  "Deployment/turnpike-operator",
];
const crdNames = () =>
  readdirSync(join(repoRoot, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .map((f) => (yaml.load(readFileSync(join(repoRoot, "crds", f), "utf8")) as Manifest).metadata.name);

/** Namespaces this file created, deleted at the end. */
const created: string[] = [];
afterAll(async () => {
  for (const namespace of created) await deleteNamespace(namespace);
});

/** A namespace for a release, with Pod Security "restricted" enforced and warned about. */
async function restrictedNamespace(prefix: string): Promise<string> {
  const name = await createNamespace(uniqueName(prefix));
  created.push(name);
  await kubectlOk([
    "label",
    "namespace",
    name,
    "pod-security.kubernetes.io/enforce=restricted",
    "pod-security.kubernetes.io/warn=restricted",
  ]);
  return name;
}

function expectAccepted(result: { stdout: string; stderr: string }, objects: readonly Manifest[]) {
  // Every applied object is reported back; warnings (PodSecurity, deprecated APIs) are failures.
  expect(result.stderr).not.toMatch(/warning/i);
  const applied = objects.filter((o) => o.kind !== "Namespace" && !PROMETHEUS_OPERATOR_KINDS.has(o.kind));
  for (const o of applied) {
    expect(result.stdout).toContain(`${o.metadata.name} serverside-applied (server dry run)`);
  }
}

describe("Helm chart", () => {
  let namespace: string;
  let defaults: Manifest[];
  let everything: Manifest[];

  beforeAll(async () => {
    await helmBinary(); // first run on a fresh machine builds helm from the Go module proxy
    namespace = await restrictedNamespace("pkg-helm");
    defaults = parseManifests(await helmTemplate("turnpike", namespace));
    everything = parseManifests(await helmTemplate("turnpike", namespace, ALL_FEATURES));
  }, 900_000);

  it("installs the CRDs from crds/, the operator with its RBAC, the gateway and the collector", () => {
    const crds = expectAllCrds(defaults);
    expect(ids(defaults)).toEqual(
      expect.arrayContaining([
        ...CORE_OBJECTS,
        "Namespace/pepr-system",
        "NetworkPolicy/turnpike-collector",
        "NetworkPolicy/turnpike-gateway",
        "NetworkPolicy/turnpike-workers",
        "Role/turnpike-operator-pepr-store",
        "RoleBinding/turnpike-operator-pepr-store",
        "Service/turnpike-gateway",
        "ServiceAccount/turnpike-operator",
      ]),
    );
    for (const crd of crds.filter((n) => n !== "peprstores.pepr.dev")) {
      const file = join(repoRoot, "crds", `${crd}.yaml`);
      const rendered = defaults.find((o) => o.kind === "CustomResourceDefinition" && o.metadata.name === crd);
      expect(rendered).toEqual(yaml.load(readFileSync(file, "utf8")));
    }
    expect(ids(everything)).toEqual(
      expect.arrayContaining([
        "ConfigMap/turnpike-dashboard",
        "HorizontalPodAutoscaler/turnpike-gateway",
        "PrometheusRule/turnpike",
        "ServiceMonitor/turnpike-collector",
        "ServiceMonitor/turnpike-gateway",
      ]),
    );
  });

  it("is accepted by the apiserver (server-side dry run), with every feature on", async () => {
    expectAccepted(await dryRunApply(defaults), defaults);
    expectAccepted(await dryRunApply(everything), everything);
  });

  it("runs every container non-root with a read-only root filesystem and resources set", () => {
    expect(podSecurityProblems(everything)).toEqual([]);
    expect(podSecurityProblems(defaults)).toEqual([]);
  });

  it("takes connection URLs and credentials only from Secrets", () => {
    expect(plaintextSecretProblems(everything)).toEqual([]);
    expect(valuesSecretProblems(readFileSync(join(CHART_DIR, "values.yaml"), "utf8"), "values.yaml")).toEqual(
      [],
    );
    const gateway = everything.find((o) => o.kind === "Deployment" && o.metadata.name === "turnpike-gateway");
    const env = (gateway as any).spec.template.spec.containers[0].env; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(env.find((e: { name: string }) => e.name === "TURNPIKE_AMQP_URL").valueFrom.secretKeyRef).toEqual({
      name: "turnpike-runtime",
      key: "amqp-url",
    });
  });

  it("refuses inline credentials through its values schema", async () => {
    const refused = async (set: string) => {
      await expect(helmTemplate("turnpike", namespace, ["--set", set])).rejects.toThrow(/schema/);
    };
    await refused("runtime.password=hunter2");
    await refused("operator.amqpUrl=amqp://user:pass@rabbitmq:5672");
    await refused("gateway.extraEnv[0].name=TURNPIKE_AMQP_URL,gateway.extraEnv[0].value=amqp://u:p@h");
    await refused("collector.extraEnv[0].name=TURNPIKE_JWT_SECRET,collector.extraEnv[0].value=x");
    // Non-secret settings are fine.
    const ok = parseManifests(
      await helmTemplate("turnpike", namespace, [
        "--set-string",
        "gateway.extraEnv[0].name=TURNPIKE_SYNC_TIMEOUT_MS,gateway.extraEnv[0].value=5000",
      ]),
    );
    expect(ok.some((o) => o.kind === "Deployment")).toBe(true);
  });

  it("renders the values of the ArgoCD Application example", async () => {
    const app = yaml.load(readFileSync(join(repoRoot, "config/argocd/application.yaml"), "utf8")) as any; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(app.spec.source.path).toBe("config/helm/turnpike");
    const values = JSON.stringify(app.spec.source.helm.valuesObject);
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const file = join(mkdtempSync(join(tmpdir(), "turnpike-argocd-")), "values.json");
    writeFileSync(file, values);
    const rendered = parseManifests(
      await helmTemplate(app.spec.source.helm.releaseName, app.spec.destination.namespace, ["-f", file]),
    );
    expect(ids(rendered)).toEqual(
      expect.arrayContaining(["PrometheusRule/turnpike", "Deployment/turnpike-operator"]),
    );
    expect(podSecurityProblems(rendered)).toEqual([]);
  });
});

describe("kustomize base", () => {
  let objects: Manifest[];

  beforeAll(async () => {
    objects = parseManifests(await kustomize());
  });

  it("installs the CRDs from crds/, config/operator and config/runtime", () => {
    expectAllCrds(objects);
    expect(ids(objects)).toEqual(
      expect.arrayContaining([
        ...CORE_OBJECTS,
        "Namespace/turnpike",
        "Namespace/turnpike-system",
        "NetworkPolicy/turnpike-workers",
        "ServiceAccount/turnpike-operator",
      ]),
    );
    const operator = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "turnpike-operator");
    const container = (operator as any).spec.template.spec.containers[0]; // eslint-disable-line @typescript-eslint/no-explicit-any
    // The image runs compiled JavaScript (Dockerfile.operator), whatever config/operator says.
    expect(container.command).toEqual(["node", "/app/dist/operator/main.js"]);
    expect(container.image).toBe("ghcr.io/turnpike-dev/turnpike-operator:0.1.0");
  });

  it("is accepted by the apiserver (server-side dry run)", async () => {
    // Into unique namespaces (pepr-system stays: the operator's own tests share it).
    const renames = {
      turnpike: uniqueName("pkg-kz-runtime"),
      "turnpike-system": uniqueName("pkg-kz-operator"),
    };
    created.push(...Object.values(renames));
    const relocated = renameNamespaces(objects, renames);
    expect(relocated.filter((o) => o.metadata.namespace === "turnpike")).toEqual([]);
    expectAccepted(await dryRunApply(relocated), relocated);
  });

  it("runs every container non-root with a read-only root filesystem and resources set", () => {
    expect(podSecurityProblems(objects)).toEqual([]);
  });

  it("takes connection URLs and credentials only from Secrets", () => {
    expect(plaintextSecretProblems(objects)).toEqual([]);
  });
});

describe("every manifest under config/", () => {
  /** Every YAML file of config/ except the Helm templates (Go templates, rendered above). */
  function yamlFiles(dir: string): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const path = join(dir, e.name);
      if (e.isDirectory()) return path.endsWith("helm/turnpike/templates") ? [] : yamlFiles(path);
      return /\.ya?ml$/.test(e.name) ? [path] : [];
    });
  }

  it("holds no Secret with real values and no URL with a password", () => {
    const problems: string[] = [];
    for (const file of yamlFiles(join(repoRoot, "config"))) {
      const rel = file.slice(repoRoot.length + 1);
      const text = readFileSync(file, "utf8");
      for (const doc of parseManifests(text)) {
        if (doc.kind !== "Secret") continue;
        // Only templates may show a Secret, and then only with <placeholders>.
        const values = Object.values({ ...(doc.stringData ?? {}), ...(doc.data ?? {}) } as Record<
          string,
          string
        >);
        if (!rel.endsWith(".template.yaml")) problems.push(`${rel}: a Secret in a manifest`);
        for (const value of values) {
          if (!/^[^<>]*(<[a-z-]+>[^<>]*)+$/.test(value))
            problems.push(`${rel}: a Secret value is not a <placeholder>`);
        }
      }
      // The objects themselves (comments may show examples): no URL with a password in any field.
      const objects = JSON.stringify(parseManifests(text)).replace(/<[a-z-]+>/g, "");
      problems.push(...valuesSecretProblems(objects, rel).filter((p) => !p.includes("inline value")));
    }
    expect(problems).toEqual([]);
  });
});

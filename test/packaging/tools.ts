/**
 * Helpers of the packaging tests: the helm binary (built by hack/build-helm.sh), rendering the chart
 * and the kustomize base, parsing manifests, and walking the pod specs of rendered workloads.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import yaml from "js-yaml";
import { kubectl, repoRoot } from "../harness/kube.js";

const execFileAsync = promisify(execFile);

export const CHART_DIR = join(repoRoot, "config/helm/turnpike");
export const KUSTOMIZE_BASE = join(repoRoot, "config/kustomize/base");

/** A rendered Kubernetes object, loosely typed. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

let helmPath: Promise<string> | undefined;

/** Path of the helm binary; builds it into the cache the first time (minutes on a fresh machine). */
export function helmBinary(): Promise<string> {
  helmPath ??= execFileAsync("bash", [join(repoRoot, "hack/build-helm.sh")], {
    maxBuffer: 16 * 1024 * 1024,
  }).then(({ stdout }) => stdout.trim().split("\n").at(-1)!);
  return helmPath;
}

/** `helm template <release> config/helm/turnpike --include-crds ...args`, as text. */
export async function helmTemplate(release: string, namespace: string, args: string[] = []): Promise<string> {
  const helm = await helmBinary();
  const { stdout } = await execFileAsync(
    helm,
    ["template", release, CHART_DIR, "--namespace", namespace, "--include-crds", ...args],
    { maxBuffer: 64 * 1024 * 1024 },
  );
  return stdout;
}

/** `kubectl kustomize <dir>` with the control plane's kubectl, as text. */
export async function kustomize(dir: string = KUSTOMIZE_BASE): Promise<string> {
  const result = await kubectl(["kustomize", dir]);
  if (result.code !== 0) throw new Error(`kubectl kustomize ${dir} failed: ${result.stderr}`);
  return result.stdout;
}

/** Every non-empty YAML document of a multi-document text (duplicate keys are an error). */
export function parseManifests(text: string): Manifest[] {
  return (yaml.loadAll(text) as (Manifest | null)[]).filter((doc): doc is Manifest => doc !== null);
}

export const toYaml = (objects: readonly Manifest[]): string =>
  objects.map((o) => yaml.dump(o, { lineWidth: -1, noRefs: true })).join("---\n");

/**
 * The objects with namespaces renamed (`from` -> `to`): Namespace objects, metadata.namespace and
 * the subjects of role bindings. Lets a test apply fixed-namespace manifests into unique ones, so
 * it never creates namespaces that other tests or `make run` may want to create themselves.
 */
export function renameNamespaces(objects: readonly Manifest[], renames: Record<string, string>): Manifest[] {
  return objects.map((original) => {
    const o = structuredClone(original) as Manifest & { subjects?: { namespace?: string }[] };
    if (o.kind === "Namespace" && renames[o.metadata.name]) o.metadata.name = renames[o.metadata.name]!;
    if (o.metadata.namespace && renames[o.metadata.namespace]) {
      o.metadata.namespace = renames[o.metadata.namespace];
    }
    for (const subject of o.subjects ?? []) {
      if (subject.namespace && renames[subject.namespace]) subject.namespace = renames[subject.namespace];
    }
    return o;
  });
}

/** Kinds served only with the Prometheus Operator installed: rendered, but not applied here. */
export const PROMETHEUS_OPERATOR_KINDS = new Set(["ServiceMonitor", "PrometheusRule", "PodMonitor"]);

/**
 * Creates the namespaces among `objects` for real (a server-side dry run of a namespaced object
 * fails when its namespace does not exist), then applies everything else with a server-side dry
 * run. Returns kubectl's output; throws with stderr when the apiserver refuses something.
 */
export async function dryRunApply(objects: readonly Manifest[]): Promise<{ stdout: string; stderr: string }> {
  const namespaces = objects.filter((o) => o.kind === "Namespace");
  if (namespaces.length > 0) {
    const created = await kubectl(
      ["apply", "--server-side", "--force-conflicts", "--field-manager=turnpike-packaging-test", "-f", "-"],
      toYaml(namespaces),
    );
    if (created.code !== 0) throw new Error(`creating namespaces failed: ${created.stderr}`);
  }
  const rest = objects.filter((o) => o.kind !== "Namespace" && !PROMETHEUS_OPERATOR_KINDS.has(o.kind));
  const result = await kubectl(
    [
      "apply",
      "--server-side",
      "--dry-run=server",
      "--force-conflicts",
      "--field-manager=turnpike-packaging-test",
      "-f",
      "-",
    ],
    toYaml(rest),
  );
  if (result.code !== 0) throw new Error(`server-side dry-run apply failed:\n${result.stderr}`);
  return { stdout: result.stdout, stderr: result.stderr };
}

/** A pod spec (of a Deployment, StatefulSet, DaemonSet, Job, CronJob or Pod) and where it came from. */
export interface PodSpecOf {
  owner: string;
  spec: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** The pod specs of every workload among `objects`. */
export function podSpecs(objects: readonly Manifest[]): PodSpecOf[] {
  const out: PodSpecOf[] = [];
  for (const o of objects) {
    const owner = `${o.kind}/${o.metadata.name}`;
    const spec = o.spec as Record<string, any> | undefined; // eslint-disable-line @typescript-eslint/no-explicit-any
    if (o.kind === "Pod") out.push({ owner, spec: spec ?? {} });
    else if (o.kind === "CronJob") out.push({ owner, spec: spec?.jobTemplate?.spec?.template?.spec ?? {} });
    else if (spec?.template?.spec) out.push({ owner, spec: spec.template.spec });
  }
  return out;
}

/** Every container of a pod spec, init containers included. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function containersOf(spec: Record<string, any>): Record<string, any>[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
}

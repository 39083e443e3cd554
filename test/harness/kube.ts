/**
 * Small helpers for tests that talk to the throwaway control plane: kubectl, CRD installation,
 * per-test namespaces.
 */
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export { installCrds } from "../../hack/control-plane.js";
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export interface KubectlResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Runs the control plane's own kubectl (same version as the apiserver); never throws. */
export async function kubectl(args: string[], input?: string): Promise<KubectlResult> {
  const binDir = process.env.TURNPIKE_KUBE_BIN;
  const kubeconfig = process.env.KUBECONFIG;
  if (!binDir || !kubeconfig) throw new Error("kubectl(): the test harness did not set KUBECONFIG");
  return new Promise((resolveResult) => {
    const child = execFile(
      join(binDir, "kubectl"),
      ["--kubeconfig", kubeconfig, ...args],
      { maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolveResult({ stdout, stderr, code });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Applies samples/<file> into `namespace` as the tests' own field manager (server-side). */
export async function applySample(namespace: string, file: string): Promise<void> {
  await kubectlOk([
    ...["apply", "--server-side", "--field-manager=turnpike-tests", "-n", namespace, "-f"],
    join(repoRoot, "samples", file),
  ]);
}

/** Like kubectl() but throws with stderr when the command fails. */
export async function kubectlOk(args: string[], input?: string): Promise<string> {
  const result = await kubectl(args, input);
  if (result.code !== 0) throw new Error(`kubectl ${args.join(" ")} failed: ${result.stderr}`);
  return result.stdout;
}

/** Creates a namespace for one test and returns its name. */
export async function createNamespace(name: string): Promise<string> {
  await kubectlOk(["create", "namespace", name]);
  return name;
}

/** Deletes a namespace without waiting (no controller-manager here to finish it anyway). */
export async function deleteNamespace(name: string): Promise<void> {
  await kubectl(["delete", "namespace", name, "--wait=false", "--ignore-not-found"]);
}

export interface AuditedWrite {
  user: string;
  verb: string;
  resource: string;
  namespace?: string;
  name?: string;
  subresource?: string;
}

/** Where the audit log ends now; pass it to writesSince() to see only later writes. */
export function auditMark(): number {
  const path = process.env.TURNPIKE_AUDIT_LOG;
  if (!path) throw new Error("auditMark(): the test harness did not set TURNPIKE_AUDIT_LOG");
  return statSync(path).size;
}

/** Every write the apiserver accepted or refused after `mark`, optionally of one user only. */
export function writesSince(mark: number, user?: string): AuditedWrite[] {
  const text = readFileSync(process.env.TURNPIKE_AUDIT_LOG!).subarray(mark).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line))
    .filter((event) => event.stage === "ResponseComplete")
    .map((event) => ({
      user: event.user?.username as string,
      verb: event.verb as string,
      resource: event.objectRef?.resource as string,
      namespace: event.objectRef?.namespace,
      name: event.objectRef?.name,
      subresource: event.objectRef?.subresource,
    }))
    .filter((write) => user === undefined || write.user === user);
}

/** Writes status through the status subresource, as a controller does. */
export async function patchStatus(namespace: string, resource: string, name: string, status: object) {
  const result = await kubectl([
    "patch",
    resource,
    name,
    "-n",
    namespace,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status }),
  ]);
  if (result.code !== 0) throw new Error(`patching status of ${resource}/${name}: ${result.stderr}`);
}

/** Plays the Deployment controller this apiserver lacks: `available` replicas of the current spec. */
export async function markDeploymentAvailable(namespace: string, name: string, available: number) {
  const deployment = JSON.parse(await kubectlOk(["get", "deployment", name, "-n", namespace, "-o", "json"]));
  await patchStatus(namespace, "deployment", name, {
    observedGeneration: deployment.metadata.generation,
    replicas: available,
    updatedReplicas: available,
    readyReplicas: available,
    availableReplicas: available,
  });
}

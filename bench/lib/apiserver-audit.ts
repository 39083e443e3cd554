/**
 * What the operator bench reads off the apiserver: its request counters, the audit log's writes
 * in a namespace, and the children the operator applied. Counts only; no load of its own.
 */
import { readFileSync } from "node:fs";
import type { ControlPlane } from "../../hack/control-plane.js";
import type { KubeClient } from "./kube-client.js";

/** apiserver_request_total summed by verb, from the apiserver's metrics. */
export async function requestsByVerb(client: KubeClient): Promise<Record<string, number>> {
  const text = await client.text("/metrics");
  const byVerb: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const verb = /verb="([^"]+)"/.exec(line)?.[1] ?? "?";
    byVerb[verb] = (byVerb[verb] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return byVerb;
}

/** Counts divided by the number of models, largest first, zeros left out. */
export function perModel(counts: Record<string, number>, models: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => [k, Math.round((n / models) * 100) / 100]),
  );
}

/** One audit log entry (the fields the bench reads). */
export interface AuditEvent {
  stage: string;
  verb: string;
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
}

/** The namespace's completed requests in the audit log after byte offset `mark`. */
export function auditSince(plane: ControlPlane, mark: number, namespace: string): AuditEvent[] {
  return readFileSync(plane.auditLog)
    .subarray(mark)
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === "ResponseComplete" && e.objectRef?.namespace === namespace);
}

/** The children the operator applied in the namespace (managed-by turnpike), per kind. */
export async function countChildren(client: KubeClient, namespace: string): Promise<Record<string, number>> {
  const children: Record<string, number> = {};
  for (const [kind, path] of [
    ["Deployment", `/apis/apps/v1/namespaces/${namespace}/deployments`],
    ["Service", `/api/v1/namespaces/${namespace}/services`],
    ["PodDisruptionBudget", `/apis/policy/v1/namespaces/${namespace}/poddisruptionbudgets`],
    ["ScaledObject", `/apis/keda.sh/v1alpha1/namespaces/${namespace}/scaledobjects`],
    ["TriggerAuthentication", `/apis/keda.sh/v1alpha1/namespaces/${namespace}/triggerauthentications`],
    ["ConfigMap", `/api/v1/namespaces/${namespace}/configmaps`],
  ] as const) {
    const list = await client.ok<{ items: unknown[] }>(
      "GET",
      `${path}?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dturnpike`,
    );
    children[kind] = list.items.length;
  }
  return children;
}

/**
 * Why a model's workers cannot start, read from their Pods: a worker whose download or checksum
 * failed exits with a termination message (runtime/shared/contracts/start-failure.ts), which the
 * kubelet keeps in the container's state or last state while it backs off restarting it.
 */
import type { V1Pod } from "@kubernetes/client-node";
import { K8s, kind } from "kubernetes-fluent-client";
import { parseStartFailure, type StartFailureReason } from "../../runtime/shared/contracts/start-failure.js";
import { workerSelector } from "./naming.js";

export interface StartFailure {
  reason: StartFailureReason;
  message: string;
}

/** The newest known start failure among `pods`' worker containers (pure). */
export function startFailureOf(pods: V1Pod[]): StartFailure | undefined {
  let newest: { at: number; failure: StartFailure } | undefined;
  for (const pod of pods) {
    if (pod.metadata?.deletionTimestamp) continue;
    for (const status of pod.status?.containerStatuses ?? []) {
      if (status.name !== "worker" || status.ready) continue;
      for (const terminated of [status.state?.terminated, status.lastState?.terminated]) {
        const failure = parseStartFailure(terminated?.message);
        if (!failure) continue;
        const at = Date.parse(String(terminated?.finishedAt ?? "")) || 0;
        if (!newest || at > newest.at) newest = { at, failure };
      }
    }
  }
  return newest?.failure;
}

/** Reads the model's worker Pods and returns why they cannot start, if they say so. */
export async function readStartFailure(namespace: string, name: string): Promise<StartFailure | undefined> {
  let query = K8s(kind.Pod).InNamespace(namespace);
  for (const [key, value] of Object.entries(workerSelector(name))) query = query.WithLabel(key, value);
  try {
    return startFailureOf((await query.Get()).items as V1Pod[]);
  } catch (error) {
    throw new Error(`listing the worker pods of ${namespace}/${name}`, { cause: error });
  }
}

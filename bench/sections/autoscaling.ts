/**
 * Section 5, autoscaling: the local cluster of the autoscaling tests (real kube-controller-manager,
 * kube-scheduler, KEDA operator and metrics adapter, the node agent running workers as local
 * processes) and the operator. Measured:
 * - cold start: a synchronous request to a model at zero replicas, request to answer (KEDA
 *   activation, Deployment -> ReplicaSet -> Pod, scheduling, process start, model load), median of N;
 * - scale-out: a backlog of `backlog` requests above targetQueueDepth, split in two parts: the
 *   reaction (backlog queued -> the HPA asks for the maximum; the node is cordoned meanwhile so no
 *   worker drains the backlog before the controllers have acted) and the start (uncordon -> that
 *   many ready workers).
 * The model is the generated echo graph (its load is negligible, so the times are the machinery's);
 * KEDA pollingInterval 1 s, HPA sync period 2 s.
 */
import { kubectlOk } from "../../test/harness/kube.js";
import { eventually } from "../../test/operator/helpers/operator-process.js";
import { startLocalCluster } from "../../test/autoscaling/helpers/cluster.js";
import { modelEnv, type ModelEnv } from "../../test/autoscaling/helpers/model-env.js";
import { inferSync, submit } from "../../test/autoscaling/helpers/requests.js";
import { say } from "../lib/env.js";
import { percentile } from "../lib/stats.js";

export interface AutoscalingResult {
  config: string;
  coldStartMs: number[];
  coldStartMedianMs: number;
  scaleOut: { replicas: number; backlog: number; reactionMs: number; startMs: number; totalMs: number };
}

async function workerCount(env: ModelEnv, model: string): Promise<number> {
  const pods = JSON.parse(
    await kubectlOk([
      "get",
      "pods",
      "-n",
      env.ns,
      "-l",
      `app.kubernetes.io/component=worker,turnpike.dev/owner=${model}`,
      "-o",
      "json",
    ]),
  ).items as Array<{ status?: { containerStatuses?: Array<{ ready: boolean }> } }>;
  return pods.filter((p) => p.status?.containerStatuses?.every((s) => s.ready)).length;
}

export async function autoscaling(coldStarts: number): Promise<AutoscalingResult> {
  say("autoscaling: starting the local cluster (controllers, KEDA, node agent)");
  const cluster = await startLocalCluster({ keda: true });
  let env: ModelEnv | undefined;
  try {
    env = await modelEnv("bench-as", {
      name: "cold",
      scaling: { minReplicas: 0, maxReplicas: 1, cooldownSeconds: 3 },
    });
    const e = env;
    const coldStartMs: number[] = [];
    for (let i = 1; i <= coldStarts; i++) {
      await eventually(
        "the model back at zero",
        async () => {
          const im = await e.get("inferencemodel", "cold");
          return (im?.spec?.replicas ?? 0) === 0 && (await workerCount(e, "cold")) === 0 ? true : undefined;
        },
        300_000,
      );
      const answer = await inferSync(e, "cold", i, 240_000);
      if (answer.status !== 200) throw new Error(`cold start ${i}: answered ${answer.status}`);
      coldStartMs.push(answer.ms);
      say(`autoscaling: cold start ${i}/${coldStarts}: ${answer.ms} ms`);
    }

    const replicas = 3;
    const backlog = 40;
    await kubectlOk(["cordon", cluster.agent.nodeName]);
    await e.applyModel("wide", {
      minReplicas: 1,
      maxReplicas: replicas,
      targetQueueDepth: 5,
      cooldownSeconds: 300,
    });
    await eventually(
      "the ScaledObject of wide",
      async () => ((await e.get("hpa", "keda-hpa-wide")) ? true : undefined),
      120_000,
    );
    const queuedAt = Date.now();
    for (let seq = 1; seq <= backlog; seq++) await submit(e, "wide", seq);
    const queuedMs = Date.now() - queuedAt;
    await eventually(
      "the HPA at the maximum",
      async () =>
        (await e.get("hpa", "keda-hpa-wide"))?.status?.desiredReplicas === replicas ? true : undefined,
      300_000,
    );
    const askedAt = Date.now();
    await kubectlOk(["uncordon", cluster.agent.nodeName]);
    await eventually(
      `${replicas} ready workers`,
      async () => ((await workerCount(e, "wide")) >= replicas ? true : undefined),
      300_000,
    );
    const readyAt = Date.now();
    const reactionMs = askedAt - queuedAt - queuedMs;
    return {
      config:
        "echo model; KEDA pollingInterval 1 s, HPA sync 2 s; cold start maxReplicas 1, cooldown 3 s; " +
        `scale-out targetQueueDepth 5, backlog ${backlog} (queued in ${queuedMs} ms)`,
      coldStartMs,
      coldStartMedianMs: percentile(
        [...coldStartMs].sort((a, b) => a - b),
        50,
      ),
      scaleOut: {
        replicas,
        backlog,
        reactionMs,
        startMs: readyAt - askedAt,
        totalMs: reactionMs + readyAt - askedAt,
      },
    };
  } finally {
    await kubectlOk(["uncordon", cluster.agent.nodeName]).catch(() => undefined);
    await env?.cleanup().catch(() => undefined);
    await cluster.stop();
  }
}

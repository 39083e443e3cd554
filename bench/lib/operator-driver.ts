/**
 * What drives the operator bench: the operator as its own process with a request/answer IPC
 * channel, the sample model it is given N times, a stand-in for the Deployment controller the
 * throwaway control plane lacks, a watch counting models with status written and Ready, and the
 * clean-up of the models' RabbitMQ queues.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { load } from "js-yaml";
import { names } from "../../runtime/shared/contracts/index.js";
import { repoRoot, services } from "./env.js";
import { forEachLimited, type KubeClient } from "./kube-client.js";
import { nodeArgsFrom, startTs } from "./processes.js";

export const GROUP_PATH = "/apis/turnpike.dev/v1alpha1";

/** The operator's RabbitMQ work: management-API listings and GETs, declarations. */
export interface QueueStats {
  listings: number;
  declarations: number;
  sharedDeclarations: number;
  queueGets: number;
}

interface Item {
  metadata: { name: string; generation?: number; labels?: Record<string, string> };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
  spec?: { replicas?: number };
}

let sample: { metadata: Record<string, unknown> } | undefined;

/** samples/inference-model-ocr-cpu.yaml renamed: a typical model, with every child kind. */
export function sampleModel(name: string, namespace: string) {
  sample ??= load(readFileSync(join(repoRoot, "samples/inference-model-ocr-cpu.yaml"), "utf8")) as {
    metadata: Record<string, unknown>;
  };
  return { ...sample, metadata: { ...sample.metadata, name, namespace } };
}

/**
 * Plays the Deployment controller (watch-driven, as the real one): each new Deployment
 * generation is reported as rolled out with all its replicas available.
 */
export async function deploymentController(client: KubeClient, namespace: string) {
  const pending = new Map<string, Item & { metadata: { generation: number } }>();
  let busy: Promise<void> | undefined;
  const drain = async () => {
    while (pending.size > 0) {
      const batch = [...pending.values()];
      pending.clear();
      await forEachLimited(batch, 4, async (d) => {
        const replicas = d.spec?.replicas ?? 1;
        await client.call(
          "PATCH",
          `/apis/apps/v1/namespaces/${namespace}/deployments/${d.metadata.name}/status`,
          {
            status: {
              observedGeneration: d.metadata.generation,
              replicas,
              updatedReplicas: replicas,
              readyReplicas: replicas,
              availableReplicas: replicas,
            },
          },
          "application/merge-patch+json",
        );
      });
    }
  };
  const stop = await client.watch<Item & { metadata: { generation: number } }>(
    `/apis/apps/v1/namespaces/${namespace}/deployments?labelSelector=turnpike.dev%2Fowner-kind%3Dinferencemodel`,
    (type, d) => {
      if (type === "DELETED" || d.status?.observedGeneration === d.metadata.generation) return;
      pending.set(d.metadata.name, d);
      busy ??= drain().finally(() => (busy = undefined));
    },
  );
  return {
    stop: async () => {
      stop();
      await busy;
    },
  };
}

/** Follows every InferenceModel of the namespace: how many have status written, how many are Ready. */
export async function modelTracker(client: KubeClient, namespace: string) {
  const state = new Map<string, { written: boolean; ready: boolean }>();
  const stop = await client.watch<Item>(
    `${GROUP_PATH}/namespaces/${namespace}/inferencemodels`,
    (type, im) => {
      if (type === "DELETED") return void state.delete(im.metadata.name);
      state.set(im.metadata.name, {
        written: im.status?.observedGeneration === im.metadata.generation,
        ready: !!im.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True"),
      });
    },
  );
  const count = (key: "written" | "ready") => [...state.values()].filter((s) => s[key]).length;
  return { written: () => count("written"), ready: () => count("ready"), stop };
}

/** startTs, with the V8 sampling profiler writing into `dir` when the process exits. */
function startProfiled(dir: string): typeof startTs {
  return (name, entry, env, options = {}) =>
    startTs(name, entry, env, {
      ...options,
      nodeArgs: ["--cpu-prof", `--cpu-prof-dir=${dir}`, ...(options.nodeArgs ?? [])],
    });
}

/** An operator process with a request/answer IPC channel. */
export function startOperator(kubeconfig: string, namespace: string) {
  const urls = services();
  // TURNPIKE_BENCH_OPERATOR_PROFILE=<dir> writes the operator's CPU profile there (node --cpu-prof);
  // BENCH_OPERATOR_NODE_ARGS adds node options (as BENCH_<ROLE>_NODE_ARGS does for the roles).
  const profileDir = process.env.TURNPIKE_BENCH_OPERATOR_PROFILE;
  const handle = (profileDir ? startProfiled(profileDir) : startTs)(
    "operator",
    "bench/roles/operator.ts",
    {
      KUBECONFIG: kubeconfig,
      TURNPIKE_WATCH_NAMESPACES: namespace,
      TURNPIKE_AMQP_URL: urls.amqpUrl,
      TURNPIKE_REDIS_URL: urls.redisUrl,
      TURNPIKE_RABBIT_MANAGEMENT_URL: urls.rabbitManagementUrl,
      TURNPIKE_ROLE: "operator",
    },
    { ipc: true, nodeArgs: nodeArgsFrom("BENCH_OPERATOR_NODE_ARGS") },
  );
  const waiters: ((message: Record<string, unknown>) => void)[] = [];
  handle.child.on("message", (m) => waiters.shift()?.(m as Record<string, unknown>));
  const next = () =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      waiters.push(resolve);
      void handle.exited.then(() => reject(new Error("the operator process exited")));
    });
  const ready = next();
  return {
    handle,
    ready,
    ask: (cmd: "idle" | "resync", timeoutMs: number) => {
      const answer = next();
      handle.child.send({ cmd, timeoutMs });
      return answer as Promise<{
        idle: boolean;
        ms: number;
        reconciles: number;
        renders: number;
        total: { reconciles: number; renders: number; failures: number };
        rabbitmq: QueueStats;
      }>;
    },
    stop: async () => {
      if (handle.child.connected) handle.child.send({ cmd: "stop" });
      const timer = setTimeout(() => handle.child.kill("SIGKILL"), 15_000);
      await handle.exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Deletes the namespace's queues through the management API, four at a time, each request bounded:
 * quick even for 1,000 quorum queues, and it cannot hang on a blocked AMQP connection.
 */
export async function deleteQueues(namespace: string, models: string[]): Promise<void> {
  const url = new URL(services().rabbitManagementUrl);
  const authorization = `Basic ${Buffer.from(
    `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`,
  ).toString("base64")}`;
  const n = names(namespace);
  const remove = (what: "queues" | "exchanges", name: string) =>
    fetch(`${url.origin}/api/${what}/%2F/${encodeURIComponent(name)}`, {
      method: "DELETE",
      headers: { authorization },
      signal: AbortSignal.timeout(30_000),
    }).catch(() => undefined);
  const queues = [...models.map((m) => n.modelQueue(m)), ...n.sharedQueues];
  await forEachLimited(queues, 4, async (queue) => void (await remove("queues", queue)));
  await remove("exchanges", n.deadLetterExchange);
}

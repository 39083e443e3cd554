/**
 * A namespace wired for InferenceModel integration tests: the runtime Secret, a Controller with
 * only the InferenceModel registration (runtime-config renders are recorded, not performed), and
 * helpers for the real RabbitMQ and for playing the Deployment controller this apiserver lacks.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import amqp from "amqplib";
import { Controller } from "../../../operator/controller.js";
import { loadOperatorEnv, type OperatorSettings } from "../../../operator/config.js";
import {
  inferenceModelRegistration,
  reconcileInferenceModel,
} from "../../../operator/inference-model/reconciler.js";
import { names } from "../../../runtime/shared/contracts/index.js";
import { createNamespace, deleteNamespace, kubectl, kubectlOk, writesSince } from "../../harness/kube.js";
import { rabbitManagementUrl, serviceUrls, uniqueName } from "../../harness/services.js";

function managementAuth() {
  const urls = serviceUrls();
  return `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
}

/** GET /api/queues/%2F/<queue> on the real broker; undefined when the queue does not exist. */
export async function rabbitQueue(queue: string): Promise<
  | {
      arguments: Record<string, unknown>;
      messages?: number;
      consumers?: number;
      type?: string;
      durable: boolean;
    }
  | undefined
> {
  const base = serviceUrls().rabbitManagementUrl.replace(/\/$/, "");
  const response = await fetch(`${base}/api/queues/%2F/${encodeURIComponent(queue)}`, {
    headers: { authorization: managementAuth() },
  });
  if (response.status === 404) return undefined;
  if (!response.ok) throw new Error(`management API: HTTP ${response.status} for ${queue}`);
  return (await response.json()) as never;
}

/** Deletes a queue if it exists (test cleanup). */
export async function deleteRabbitQueue(queue: string): Promise<void> {
  const base = serviceUrls().rabbitManagementUrl.replace(/\/$/, "");
  await fetch(`${base}/api/queues/%2F/${encodeURIComponent(queue)}`, {
    method: "DELETE",
    headers: { authorization: managementAuth() },
  });
}

/** Publishes `count` persistent messages straight to a queue and waits for the broker's confirms. */
export async function publishTo(queue: string, count: number): Promise<void> {
  const connection = await amqp.connect(serviceUrls().amqpUrl);
  try {
    const channel = await connection.createConfirmChannel();
    for (let i = 0; i < count; i++) channel.sendToQueue(queue, Buffer.from("{}"), { persistent: true });
    await channel.waitForConfirms();
  } finally {
    await connection.close();
  }
}

/** Takes `count` messages from `queue` and rejects them without requeue, as a worker does with a poison task. */
export async function rejectFrom(queue: string, count: number): Promise<void> {
  const connection = await amqp.connect(serviceUrls().amqpUrl);
  try {
    const channel = await connection.createChannel();
    for (let rejected = 0; rejected < count; ) {
      const message = await channel.get(queue, { noAck: false });
      if (!message) throw new Error(`${queue} holds fewer than ${count} messages`);
      channel.nack(message, false, false);
      rejected++;
    }
    await channel.close();
  } finally {
    await connection.close();
  }
}

/** Polls `check` until it returns a value other than undefined (management stats lag a few seconds). */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface ModelTestEnv {
  namespace: string;
  controller: Controller;
  settings: OperatorSettings;
  /** Namespaces whose runtime config the reconciler asked to re-render, in order. */
  renders: string[];
  /** Writes made in this namespace by the operator's (admin) identity since `mark`. */
  writesInNamespace(mark: number): ReturnType<typeof writesSince>;
  /** Runs the reconciler once, directly (no work queue). */
  reconcile(name: string): ReturnType<typeof reconcileInferenceModel>;
  /** The live InferenceModel. */
  model(name: string): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** One of its live conditions. */
  condition(name: string, type: string): Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Every child of the model (by owner label), as Kind/name, sorted. */
  children(name: string): Promise<string[]>;
  /** Server-side applies an InferenceModel (as a user would, with its own field manager). */
  applyModel(im: object): Promise<void>;
  /** Merge-patches an InferenceModel's spec. */
  patchModel(name: string, patch: object): Promise<void>;
  /** Warning Events about an object. */
  warnings(name: string): Promise<{ reason: string; message: string; count: number }[]>;
  /** Whether an object is gone. */
  gone(resource: string, name: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

const CHILD_RESOURCES =
  "deployments,services,poddisruptionbudgets,scaledobjects.keda.sh,triggerauthentications.keda.sh";

/** Creates a namespace with the runtime Secret and a Controller that knows only InferenceModel. */
export async function modelTestEnv(prefix: string, settings: OperatorSettings): Promise<ModelTestEnv> {
  const namespace = await createNamespace(uniqueName(prefix));
  const urls = serviceUrls();
  await kubectlOk([
    "create",
    "secret",
    "generic",
    settings.runtimeSecret,
    "-n",
    namespace,
    `--from-literal=amqp-url=${urls.amqpUrl}`,
    `--from-literal=redis-url=${urls.redisUrl}`,
    `--from-literal=rabbitmq-management-url=${rabbitManagementUrl()}`,
  ]);
  const renders: string[] = [];
  const env = loadOperatorEnv({
    TURNPIKE_AMQP_URL: urls.amqpUrl,
    TURNPIKE_RABBIT_MANAGEMENT_URL: rabbitManagementUrl(),
    TURNPIKE_REDIS_URL: urls.redisUrl,
  });
  const controller = new Controller({
    env,
    settings,
    kinds: [inferenceModelRegistration],
    renderRuntimeConfig: async (_ctx, ns) => {
      renders.push(ns);
    },
    queue: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
  });
  const model = (name: string) => getJson(namespace, "inferencemodel", name);
  const listJson = async (args: string[]) =>
    JSON.parse(await kubectlOk(["get", ...args, "-n", namespace, "-o", "json"])).items;
  return {
    namespace,
    controller,
    settings,
    renders,
    writesInNamespace: (mark) => writesSince(mark, "turnpike-admin").filter((w) => w.namespace === namespace),
    reconcile: (name) => reconcileInferenceModel(controller.ctx, namespace, name),
    model,
    condition: async (name, type) =>
      (await model(name)).status?.conditions?.find((c: { type: string }) => c.type === type),
    children: async (name) =>
      (await listJson([CHILD_RESOURCES, "-l", `turnpike.dev/owner=${name}`]))
        .map((i: KubernetesObject) => `${i.kind}/${i.metadata!.name}`)
        .sort(),
    applyModel: async (im) => {
      const args = ["apply", "--server-side", "--field-manager=turnpike-tests", "-n", namespace, "-f", "-"];
      await kubectlOk(args, JSON.stringify(im));
    },
    patchModel: async (name, patch) => {
      const args = ["patch", "inferencemodel", name, "-n", namespace, "--type=merge"];
      await kubectlOk([...args, "-p", JSON.stringify(patch)]);
    },
    warnings: (name) => listJson(["events", "--field-selector", `involvedObject.name=${name},type=Warning`]),
    gone: async (resource, name) => (await kubectl(["get", resource, name, "-n", namespace])).code !== 0,
    cleanup: async () => {
      await controller.stop();
      const n = names(namespace);
      for (const queue of n.sharedQueues) await deleteRabbitQueue(queue);
      await deleteNamespace(namespace);
    },
  };
}

/** `kubectl get -o json` of one object. */
export async function getJson(namespace: string, resource: string, name: string) {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return JSON.parse(await kubectlOk(["get", resource, name, "-n", namespace, "-o", "json"])) as any;
}

export { markDeploymentAvailable } from "../../harness/kube.js";

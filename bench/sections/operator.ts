/**
 * Section 4, the operator: a throwaway control plane (etcd + kube-apiserver, Turnpike and KEDA
 * CRDs), the operator as its own process (bench/roles/operator.ts: the real Controller and
 * registrations), and N InferenceModels created at once (the samples' OCR model, renamed). Measured:
 * the time from the first create to every model having its children applied and its status
 * written (status.observedGeneration = generation; children are applied before status), to every
 * model Ready (the benchmark plays the Deployment controller this control plane lacks), the
 * writes of one no-op resync (audit log), and the operator's memory. The models' RabbitMQ queues
 * are deleted afterwards.
 */
import { readFileSync, statSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { installCrds, kedaCrdDir, startControlPlane, type ControlPlane } from "../../hack/control-plane.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { onInterrupt, repoRoot, say, services, sleep, uniqueName } from "../lib/env.js";
import { BENCH_USER_AGENT, forEachLimited, KubeClient } from "../lib/kube-client.js";
import {
  CpuMeter,
  cpuWindow,
  memoryMb,
  openSockets,
  pidsWithArgument,
  startProcess,
  startTs,
} from "../lib/processes.js";

export interface OperatorResult {
  models: number;
  /** Seconds to create the N objects (the benchmark's own requests). */
  createSeconds: number;
  /** First create -> every model has children applied and status written. */
  statusSeconds?: number;
  /** First create -> every model Ready=True. */
  readySeconds?: number;
  /** Children per kind once done. */
  children: Record<string, number>;
  /** Writes the operator made until idle, per model. */
  writesPerModel: number;
  reconcilesPerModel: number;
  /** Reconciles that failed (and were retried with backoff by the work queue). */
  reconcileFailures: number;
  runtimeConfigRenders: number;
  /** How long the benchmark waited for all models before reporting progress instead. */
  limitSeconds: number;
  /** Models with status written / Ready when the wait ended. */
  withStatusAtEnd: number;
  readyAtEnd: number;
  /** Models reaching written status per second, over the wait. */
  statusPerSecond: number;
  /** Sockets the operator process holds open when the wait ends. */
  operatorSockets: number;
  /** Writes (any client) in the namespace during one no-op resync: expected 0 (not measured if unfinished). */
  resyncWrites?: number;
  resyncWriteDetail: string[];
  resyncSeconds?: number;
  resyncReconciles?: number;
  rssMb: number;
  /** Operator CPU per model until idle (ms): robust to a busy machine, unlike the wall times. */
  operatorCpuMsPerModel: number;
  /** kube-apiserver and etcd CPU per model until idle (ms), the benchmark's own requests included. */
  apiserverCpuMsPerModel: number;
  /** 1-minute load average when the round started and when it ended. */
  loadAverage: [number, number];
  /** The operator's writes until idle, per model, by verb and resource (from the audit log). */
  writesByKind: Record<string, number>;
  /** Every apiserver request until idle, per model, by verb (its metrics; the benchmark's own included). */
  apiRequestsPerModel: Record<string, number>;
  /** The operator's RabbitMQ work until idle: management-API listings and GETs, declarations. */
  rabbitmq: QueueStats;
  /** The same during the no-op resync. */
  resyncRabbitmq?: QueueStats;
  peakRssMb: number;
  /** CPU seconds spent until idle, by process. */
  cpuSeconds: Record<string, number>;
  /** Share of the machine's cores used by other processes meanwhile. */
  foreignCpuPercent: number;
}

const GROUP_PATH = "/apis/turnpike.dev/v1alpha1";

interface QueueStats {
  listings: number;
  declarations: number;
  sharedDeclarations: number;
  queueGets: number;
}

/** apiserver_request_total summed by verb, from the apiserver's metrics. */
async function requestsByVerb(client: KubeClient): Promise<Record<string, number>> {
  const text = await client.text("/metrics");
  const byVerb: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const verb = /verb="([^"]+)"/.exec(line)?.[1] ?? "?";
    byVerb[verb] = (byVerb[verb] ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return byVerb;
}

function perModel(counts: Record<string, number>, models: number): Record<string, number> {
  return Object.fromEntries(
    Object.entries(counts)
      .filter(([, n]) => n > 0)
      .sort(([, a], [, b]) => b - a)
      .map(([k, n]) => [k, Math.round((n / models) * 100) / 100]),
  );
}

interface Item {
  metadata: { name: string; generation?: number; labels?: Record<string, string> };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
  spec?: { replicas?: number };
}

interface AuditEvent {
  stage: string;
  verb: string;
  userAgent?: string;
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
}

function auditSince(plane: ControlPlane, mark: number, namespace: string): AuditEvent[] {
  return readFileSync(plane.auditLog)
    .subarray(mark)
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line) as AuditEvent)
    .filter((e) => e.stage === "ResponseComplete" && e.objectRef?.namespace === namespace);
}

let sample: { metadata: Record<string, unknown> } | undefined;

/** samples/inference-model-ocr-cpu.yaml renamed: a typical model, with every child kind. */
function sampleModel(name: string, namespace: string) {
  sample ??= load(readFileSync(join(repoRoot, "samples/inference-model-ocr-cpu.yaml"), "utf8")) as {
    metadata: Record<string, unknown>;
  };
  return { ...sample, metadata: { ...sample.metadata, name, namespace } };
}

/**
 * Plays the Deployment controller (watch-driven, as the real one): each new Deployment
 * generation is reported as rolled out with all its replicas available.
 */
async function deploymentController(client: KubeClient, namespace: string) {
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
async function modelTracker(client: KubeClient, namespace: string) {
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
    startProcess(
      name,
      process.execPath,
      ["--cpu-prof", `--cpu-prof-dir=${dir}`, "--import", "tsx", join(repoRoot, entry)],
      env,
      options,
    );
}

/** An operator process with a request/answer IPC channel. */
function startOperator(kubeconfig: string, namespace: string) {
  const urls = services();
  // TURNPIKE_BENCH_OPERATOR_PROFILE=<dir> writes the operator's CPU profile there (node --cpu-prof).
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
    { ipc: true },
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

async function measure(
  plane: ControlPlane,
  client: KubeClient,
  count: number,
  limit?: number,
): Promise<OperatorResult> {
  const namespace = uniqueName("bench-op");
  await client.ok("POST", "/api/v1/namespaces", {
    apiVersion: "v1",
    kind: "Namespace",
    metadata: { name: namespace },
  });
  const modelNames = Array.from({ length: count }, (_, i) => `model-${String(i).padStart(4, "0")}`);
  const operator = startOperator(plane.kubeconfig, namespace);
  const unregister = onInterrupt(() => deleteQueues(namespace, modelNames));
  let standIn: Awaited<ReturnType<typeof deploymentController>> | undefined;
  try {
    await operator.ready;
    const meter = new CpuMeter()
      .track("operator", () => [operator.handle.pid])
      .track("kube-apiserver+etcd", () => pidsWithArgument(plane.stateDir))
      .trackServices();
    standIn = await deploymentController(client, namespace);
    const tracker = await modelTracker(client, namespace);
    const window = cpuWindow(meter);
    const mark = statSync(plane.auditLog).size;
    const requestsBefore = await requestsByVerb(client);
    const loadBefore = loadavg()[0]!;
    const started = Date.now();
    await forEachLimited(modelNames, 8, async (name) => {
      await client.ok(
        "POST",
        `${GROUP_PATH}/namespaces/${namespace}/inferencemodels`,
        sampleModel(name, namespace),
      );
    });
    const createSeconds = (Date.now() - started) / 1000;
    say(`operator ${count}: created in ${createSeconds.toFixed(1)} s; waiting for status`);

    let statusSeconds: number | undefined;
    let readySeconds: number | undefined;
    // Bounded: a slow operator is reported with its progress, not waited for indefinitely.
    const limitSeconds = limit ?? Math.max(120, Math.round(count * 0.24));
    const deadline = started + limitSeconds * 1000;
    while (Date.now() < deadline && readySeconds === undefined) {
      const now = Math.round((Date.now() - started) / 100) / 10;
      if (statusSeconds === undefined && tracker.written() === count) statusSeconds = now;
      if (tracker.ready() === count) readySeconds = now;
      await sleep(100);
    }
    const progress = { written: tracker.written(), ready: tracker.ready() };
    const elapsedSeconds = (Date.now() - started) / 1000;
    tracker.stop();
    const sockets = openSockets(operator.handle.pid);
    say(
      `operator ${count}: status in ${statusSeconds ?? "-"} s, ready in ${readySeconds ?? "-"} s ` +
        `(${progress.written} with status, ${progress.ready} ready after ${elapsedSeconds.toFixed(0)} s); ` +
        `${sockets} sockets open in the operator`,
    );
    const finished = readySeconds !== undefined;
    const settled = await operator.ask("idle", finished ? 120_000 : 10_000);
    await standIn.stop();
    standIn = undefined;
    const cpu = window.end();
    const loadAfter = loadavg()[0]!;
    const requestsAfter = await requestsByVerb(client);
    const requests = Object.fromEntries(
      Object.entries(requestsAfter).map(([verb, n]) => [verb, n - (requestsBefore[verb] ?? 0)]),
    );

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
    const initialWrites = auditSince(plane, mark, namespace).filter((e) => e.userAgent !== BENCH_USER_AGENT);

    // One no-op resync: every object re-listed and reconciled, the runtime config re-rendered.
    // Only meaningful once everything is done; otherwise the resync would do real work.
    let resync: { ms: number; reconciles: number; writes: AuditEvent[]; rabbitmq: QueueStats } | undefined;
    if (finished && settled.idle) {
      const resyncMark = statSync(plane.auditLog).size;
      const answer = await operator.ask("resync", 300_000);
      await sleep(1000); // a write the audit log has not flushed yet would show up now
      resync = {
        ms: answer.ms,
        reconciles: answer.reconciles,
        writes: auditSince(plane, resyncMark, namespace),
        rabbitmq: Object.fromEntries(
          Object.entries(answer.rabbitmq).map(([k, n]) => [k, n - settled.rabbitmq[k as keyof QueueStats]]),
        ) as unknown as QueueStats,
      };
    }
    const memory = memoryMb(operator.handle.pid);
    const result: OperatorResult = {
      models: count,
      createSeconds: Math.round(createSeconds * 10) / 10,
      statusSeconds,
      readySeconds,
      children,
      writesPerModel: Math.round((initialWrites.length / count) * 10) / 10,
      reconcilesPerModel: Math.round((settled.total.reconciles / count) * 10) / 10,
      reconcileFailures: settled.total.failures,
      runtimeConfigRenders: settled.total.renders,
      limitSeconds,
      withStatusAtEnd: progress.written,
      readyAtEnd: progress.ready,
      statusPerSecond: Math.round((progress.written / (statusSeconds ?? elapsedSeconds)) * 10) / 10,
      operatorSockets: sockets,
      resyncWrites: resync?.writes.length,
      resyncWriteDetail: (resync?.writes ?? [])
        .slice(0, 20)
        .map(
          (e) =>
            `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.name ?? ""} ${e.objectRef?.subresource ?? ""}`,
        ),
      resyncSeconds: resync ? Math.round(resync.ms / 100) / 10 : undefined,
      resyncReconciles: resync?.reconciles,
      rssMb: memory.rssMb,
      peakRssMb: memory.peakRssMb,
      operatorCpuMsPerModel: Math.round((cpu.cpuMs.operator ?? 0) / count),
      apiserverCpuMsPerModel: Math.round((cpu.cpuMs["kube-apiserver+etcd"] ?? 0) / count),
      loadAverage: [Math.round(loadBefore * 10) / 10, Math.round(loadAfter * 10) / 10],
      writesByKind: perModel(
        initialWrites.reduce<Record<string, number>>((acc, e) => {
          const key = `${e.verb} ${e.objectRef?.resource ?? "?"}${e.objectRef?.subresource ? `/${e.objectRef.subresource}` : ""}`;
          acc[key] = (acc[key] ?? 0) + 1;
          return acc;
        }, {}),
        count,
      ),
      apiRequestsPerModel: perModel(requests, count),
      rabbitmq: settled.rabbitmq,
      resyncRabbitmq: resync?.rabbitmq,
      cpuSeconds: Object.fromEntries(
        Object.entries(cpu.cpuMs).map(([k, v]) => [k, Math.round(v / 100) / 10]),
      ),
      foreignCpuPercent: cpu.foreignPercent,
    };
    say(
      `operator ${count}: resync ${result.resyncSeconds ?? "-"} s, ${result.resyncWrites ?? "-"} writes; ` +
        `RSS ${result.rssMb} MB`,
    );
    return result;
  } finally {
    await standIn?.stop();
    await operator.stop();
    await deleteQueues(namespace, modelNames);
    unregister();
  }
}

/**
 * Deletes the namespace's queues through the management API, four at a time, each request bounded:
 * quick even for 1,000 quorum queues, and it cannot hang on a blocked AMQP connection.
 */
async function deleteQueues(namespace: string, models: string[]): Promise<void> {
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

export async function operatorBench(counts: number[], limitSeconds?: number): Promise<OperatorResult[]> {
  say("operator: starting a throwaway control plane");
  const plane = await startControlPlane();
  const unregister = onInterrupt(() => plane.stop());
  const client = new KubeClient(plane.server, plane.stateDir);
  try {
    await installCrds(plane.kubeconfig, plane.binDir);
    await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
    // The throwaway apiserver's service range is a /24 (253 ClusterIPs) and every model has a
    // Service: add a /16 (the ServiceCIDR API, GA in 1.33) so 1,000 models fit.
    await client.ok("POST", "/apis/networking.k8s.io/v1/servicecidrs", {
      apiVersion: "networking.k8s.io/v1",
      kind: "ServiceCIDR",
      metadata: { name: "turnpike-bench" },
      spec: { cidrs: ["10.1.0.0/16"] },
    });
    const results: OperatorResult[] = [];
    for (const count of counts) results.push(await measure(plane, client, count, limitSeconds));
    return results;
  } finally {
    client.close();
    await plane.stop();
    unregister();
  }
}

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
import { execFileSync } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { loadavg } from "node:os";
import { installCrds, kedaCrdDir, startControlPlane, type ControlPlane } from "../../hack/control-plane.js";
import {
  auditSince,
  countChildren,
  perModel,
  requestsByVerb,
  type AuditEvent,
} from "../lib/apiserver-audit.js";
import { onInterrupt, repoRoot, say, sleep, uniqueName } from "../lib/env.js";
import { BENCH_USER_AGENT, forEachLimited, KubeClient } from "../lib/kube-client.js";
import {
  deleteQueues,
  deploymentController,
  GROUP_PATH,
  modelTracker,
  sampleModel,
  startOperator,
  type QueueStats,
} from "../lib/operator-driver.js";
import { CpuMeter, cpuWindow, memoryMb, openSockets, pidsWithArgument } from "../lib/processes.js";

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

    const children = await countChildren(client, namespace);
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

export async function operatorBench(counts: number[], limitSeconds?: number): Promise<OperatorResult[]> {
  say("operator: starting a throwaway control plane");
  // TURNPIKE_BENCH_FINALIZER_POLICY=1: the apiserver adds the operator's finalizer at creation
  // (config/admission/finalizer-policy.yaml; MutatingAdmissionPolicy is beta and off by default in
  // 1.34, so this is a cluster that opted in, reported apart from the default run).
  const finalizerPolicy = process.env.TURNPIKE_BENCH_FINALIZER_POLICY === "1";
  const plane = await startControlPlane(
    finalizerPolicy
      ? {
          apiserverArgs: [
            "--feature-gates=MutatingAdmissionPolicy=true",
            "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
          ],
        }
      : {},
  );
  const unregister = onInterrupt(() => plane.stop());
  const client = new KubeClient(plane.server, plane.stateDir);
  try {
    await installCrds(plane.kubeconfig, plane.binDir);
    await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
    if (finalizerPolicy) {
      execFileSync(join(plane.binDir, "kubectl"), [
        `--kubeconfig=${plane.kubeconfig}`,
        "apply",
        "--server-side",
        "-f",
        join(repoRoot, "config/admission/finalizer-policy.yaml"),
      ]);
      // The policy takes effect once the apiserver's informer has it: wait for a dry run to show it.
      for (let tries = 0; ; tries++) {
        const probe = await client.call<{ metadata?: { finalizers?: string[] } }>(
          "POST",
          `${GROUP_PATH}/namespaces/default/inferencemodels?dryRun=All`,
          sampleModel("policy-probe", "default"),
        );
        if (probe.body.metadata?.finalizers?.length) break;
        if (tries > 50) throw new Error(`the finalizer policy is not in effect: HTTP ${probe.status}`);
        await sleep(200);
      }
      say("operator: the finalizer is added at creation by a MutatingAdmissionPolicy");
    }
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

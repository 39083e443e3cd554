/**
 * A node agent standing in for the kubelet on a local control plane: it registers a Node (this
 * machine's CPU and memory, no GPU, so GPU Pods stay Pending as on a cluster without one), runs the
 * Pods the scheduler binds to it as local processes (pod-runner.ts), reports their status, and
 * finishes graceful deletion (SIGTERM, terminationGracePeriodSeconds, SIGKILL, then the final delete).
 */
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { KubeApi, KubeApiError } from "./kube-api.js";
import { registerNode } from "./node.js";
import { PodRunner } from "./pod-runner.js";

export interface NodeAgentOptions {
  kubeconfig: string;
  repoRoot: string;
  /** Pod directories (volumes, <container>.log, <container>.pid) go under <stateDir>/pods. */
  stateDir: string;
  nodeName?: string;
  /** What PersistentVolumeClaims hold: <pvcRoot>/<claim> (default <stateDir>/pvcs). */
  pvcRoot?: string;
  /** See NodeOptions.cpuOvercommit (default 8). */
  cpuOvercommit?: number;
  say?(line: string): void;
}

/** A running Pod's local ports, for a Service stand-in or a test to reach it. */
export interface LocalEndpoint {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  ready: boolean;
  /** containerPort (and its name, if any) -> local port on 127.0.0.1 */
  ports: Record<string, number>;
  /** Directory holding <container>.log and <container>.pid */
  dir: string;
}

interface Entry {
  runner: PodRunner;
  pod: V1Pod;
  dir: string;
  reported?: string;
  deleting?: boolean;
}

const BASE_ENV_KEYS = ["PATH", "HOME", "TMPDIR", "LANG", "TZ", "NODE_OPTIONS"];

export class NodeAgent {
  readonly nodeName: string;
  readonly #o: NodeAgentOptions;
  readonly #api: KubeApi;
  readonly #pods = new Map<string, Entry>();
  readonly #say: (line: string) => void;
  #timers: NodeJS.Timeout[] = [];
  #ticking = false;
  #stopped = false;

  constructor(options: NodeAgentOptions) {
    this.#o = options;
    this.nodeName = options.nodeName ?? "turnpike-local";
    this.#api = new KubeApi(options.kubeconfig);
    this.#say = options.say ?? (() => undefined);
  }

  async start(): Promise<void> {
    const heartbeat = await registerNode(this.#api, {
      name: this.nodeName,
      cpuOvercommit: this.#o.cpuOvercommit ?? 8,
    });
    this.#timers.push(setInterval(() => void heartbeat().catch((e) => this.#say(`heartbeat: ${e}`)), 10_000));
    this.#timers.push(setInterval(() => void this.#tick(), 1000));
    await this.#tick();
  }

  /** Stops every local container (SIGTERM, SIGKILL after at most `graceSeconds`); the Pods stay as they are. */
  async stop(graceSeconds = 30): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearInterval(timer);
    await Promise.all(
      [...this.#pods.values()].map((e) =>
        e.runner.stop(Math.min(graceSeconds, e.pod.spec?.terminationGracePeriodSeconds ?? 30)),
      ),
    );
    this.#api.close();
  }

  /** The Pods running here and their local ports. */
  endpoints(): LocalEndpoint[] {
    return [...this.#pods.values()]
      .filter((e) => !e.deleting)
      .map((e) => {
        const ports: Record<string, number> = {};
        for (const container of e.pod.spec?.containers ?? []) {
          for (const port of container.ports ?? []) {
            const local = e.runner.localPort(container.name, port.containerPort);
            if (local === undefined) continue;
            ports[String(port.containerPort)] = local;
            if (port.name) ports[port.name] = local;
          }
        }
        return {
          namespace: e.pod.metadata!.namespace!,
          name: e.pod.metadata!.name!,
          labels: e.pod.metadata?.labels ?? {},
          ready: e.runner.status().conditions?.find((c) => c.type === "Ready")?.status === "True",
          ports,
          dir: e.dir,
        };
      });
  }

  async #tick(): Promise<void> {
    if (this.#ticking || this.#stopped) return;
    this.#ticking = true;
    try {
      const list = await this.#api.call<{ items: V1Pod[] }>(
        "GET",
        `/api/v1/pods?fieldSelector=${encodeURIComponent(`spec.nodeName=${this.nodeName}`)}`,
      );
      const seen = new Set<string>();
      for (const pod of list.items) {
        seen.add(pod.metadata!.uid!);
        await this.#syncPod(pod);
      }
      for (const [uid, entry] of this.#pods) {
        // Gone without graceful deletion (force-deleted): stop at once.
        if (seen.has(uid)) continue;
        this.#pods.delete(uid);
        void entry.runner.stop(0);
      }
      await Promise.all([...this.#pods.values()].map((e) => this.#report(e)));
    } catch (error) {
      this.#say(`node agent: ${(error as Error).message}`);
    } finally {
      this.#ticking = false;
    }
  }

  async #syncPod(pod: V1Pod): Promise<void> {
    const uid = pod.metadata!.uid!;
    const entry = this.#pods.get(uid);
    if (pod.metadata?.deletionTimestamp) {
      if (!entry) return this.#finalDelete(pod);
      if (entry.deleting) return;
      entry.deleting = true;
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
      this.#say(`${pod.metadata.namespace}/${pod.metadata.name}: deleting (grace ${grace}s)`);
      void entry.runner
        .stop(grace)
        .then(() => this.#report(entry))
        .then(() => this.#finalDelete(pod))
        .catch((error) => this.#say(`deleting ${pod.metadata?.name}: ${error}`))
        .finally(() => this.#pods.delete(uid));
      return;
    }
    if (entry) return entry.runner.sync(pod);
    const phase = pod.status?.phase;
    if (phase === "Succeeded" || phase === "Failed") return;
    const dir = join(
      this.#o.stateDir,
      "pods",
      `${pod.metadata!.namespace}_${pod.metadata!.name}_${uid.slice(0, 8)}`,
    );
    const baseEnv = Object.fromEntries(
      BASE_ENV_KEYS.filter((k) => process.env[k] !== undefined).map((k) => [k, process.env[k]!]),
    );
    const runner = new PodRunner(pod, {
      api: this.#api,
      repoRoot: this.#o.repoRoot,
      dir,
      baseEnv,
      pvcRoot: this.#o.pvcRoot ?? join(this.#o.stateDir, "pvcs"),
      say: this.#say,
    });
    this.#pods.set(uid, { runner, pod, dir });
    this.#say(`${pod.metadata!.namespace}/${pod.metadata!.name}: starting (logs in ${dir})`);
    await runner.start();
  }

  async #report(entry: Entry): Promise<void> {
    const status = entry.runner.status();
    const key = JSON.stringify(status);
    if (key === entry.reported) return;
    const current = entry.pod.status?.conditions ?? [];
    const ours = new Set(status.conditions!.map((c) => c.type));
    // A merge patch replaces lists: keep the conditions others own (PodScheduled, DisruptionTarget).
    const conditions = [...current.filter((c) => !ours.has(c.type)), ...status.conditions!];
    const { namespace, name } = entry.pod.metadata!;
    try {
      await this.#api.call(
        "PATCH",
        `/api/v1/namespaces/${namespace}/pods/${name}/status`,
        { metadata: { uid: entry.pod.metadata!.uid }, status: { ...status, conditions } },
        "application/merge-patch+json",
      );
      entry.reported = key;
    } catch (error) {
      if (!(error instanceof KubeApiError && (error.status === 404 || error.status === 409))) throw error;
    }
  }

  async #finalDelete(pod: V1Pod): Promise<void> {
    const { namespace, name, uid } = pod.metadata!;
    await this.#api
      .call("DELETE", `/api/v1/namespaces/${namespace}/pods/${name}`, {
        apiVersion: "v1",
        kind: "DeleteOptions",
        gracePeriodSeconds: 0,
        preconditions: { uid },
      })
      .catch((error) => {
        if (!(error instanceof KubeApiError && (error.status === 404 || error.status === 409))) throw error;
      });
  }
}

/**
 * `make run`'s stand-in for a kubelet: the local control plane has no nodes, so this runs each
 * worker Deployment the operator created as local worker processes (as many as spec.replicas),
 * reports their real readiness (/readyz) in the Deployment's status, and keeps the runtime
 * ConfigMap the operator rendered in a local file that every process reads.
 *
 * Deployments that ask for a GPU are left unscheduled, as they would be on a cluster without one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { K8s, kind } from "kubernetes-fluent-client";
import type { V1Deployment } from "@kubernetes/client-node";
import { RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { freePort } from "../control-plane.js";

export interface LocalKubeletOptions {
  namespace: string;
  repoRoot: string;
  /** Where the runtime config file is written (TURNPIKE_CONFIG of every local process). */
  runtimeConfigPath: string;
  logDir: string;
  /** Connection settings and the like, passed to every worker process. */
  env: NodeJS.ProcessEnv;
  say(line: string): void;
}

interface LocalPod {
  process: ChildProcess;
  port: number;
  ready: boolean;
}

const WORKER_SELECTOR = {
  "app.kubernetes.io/component": "worker",
  "app.kubernetes.io/managed-by": "turnpike",
};
const RUNTIME_CONFIG_MAP = "turnpike-runtime";

export class LocalKubelet {
  readonly #options: LocalKubeletOptions;
  readonly #pods = new Map<string, LocalPod[]>();
  readonly #reported = new Map<string, string>();
  #timer?: NodeJS.Timeout;
  #ticking = false;
  #config = "";

  constructor(options: LocalKubeletOptions) {
    this.#options = options;
  }

  /** Syncs once (so the runtime config file exists when this resolves, if rendered), then every second. */
  async start(): Promise<void> {
    await this.#tick();
    this.#timer = setInterval(() => void this.#tick(), 1000);
  }

  /** Whether the operator has rendered a runtime config yet. */
  hasRuntimeConfig(): boolean {
    return this.#config !== "";
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    const all = [...this.#pods.values()].flat();
    this.#pods.clear();
    await Promise.all(all.map((pod) => stopPod(pod)));
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = true;
    try {
      await this.#syncRuntimeConfig();
      let query = K8s(kind.Deployment).InNamespace(this.#options.namespace);
      for (const [key, value] of Object.entries(WORKER_SELECTOR)) query = query.WithLabel(key, value);
      const deployments = (await query.Get()).items;
      const seen = new Set<string>();
      for (const deployment of deployments) {
        const name = deployment.metadata!.name!;
        seen.add(name);
        await this.#syncDeployment(deployment);
      }
      for (const [name, pods] of this.#pods) {
        if (seen.has(name)) continue;
        this.#pods.delete(name);
        await Promise.all(pods.map((pod) => stopPod(pod)));
      }
    } catch (error) {
      this.#options.say(`local kubelet: ${(error as Error).message}`);
    } finally {
      this.#ticking = false;
    }
  }

  async #syncRuntimeConfig(): Promise<void> {
    const configMap = await K8s(kind.ConfigMap)
      .InNamespace(this.#options.namespace)
      .Get(RUNTIME_CONFIG_MAP)
      .catch(() => undefined);
    const text = configMap?.data?.[RUNTIME_CONFIG_KEY];
    if (!text || text === this.#config) return;
    // Write-then-rename: a reader never sees half a file.
    mkdirSync(dirname(this.#options.runtimeConfigPath), { recursive: true });
    const tmp = `${this.#options.runtimeConfigPath}.tmp`;
    writeFileSync(tmp, text);
    renameSync(tmp, this.#options.runtimeConfigPath);
    this.#config = text;
  }

  async #syncDeployment(deployment: V1Deployment): Promise<void> {
    const name = deployment.metadata!.name!;
    const container = deployment.spec?.template.spec?.containers[0];
    const limits = { ...container?.resources?.limits, ...container?.resources?.requests };
    const wantsGpu = Object.keys(limits).some((k) => k.endsWith("/gpu"));
    const desired = wantsGpu || !this.hasRuntimeConfig() ? 0 : (deployment.spec?.replicas ?? 1);
    const pods = (this.#pods.get(name) ?? []).filter((pod) => pod.process.exitCode === null);
    while (pods.length < desired) pods.push(await this.#startPod(name, container?.env ?? []));
    while (pods.length > desired) await stopPod(pods.pop()!);
    this.#pods.set(name, pods);
    await Promise.all(pods.map(async (pod) => (pod.ready = await isReady(pod.port))));
    await this.#reportStatus(deployment, pods, wantsGpu);
  }

  async #startPod(deployment: string, env: Array<{ name: string; value?: string }>): Promise<LocalPod> {
    const port = await freePort();
    const fromSpec = Object.fromEntries(
      env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]),
    );
    const logPath = join(this.#options.logDir, `${deployment}-${port}.log`);
    const log = createWriteStream(logPath, { flags: "a" });
    const child = spawn(process.execPath, ["--import", "tsx", "runtime/worker/main.ts"], {
      cwd: this.#options.repoRoot,
      env: {
        ...this.#options.env,
        ...fromSpec,
        TURNPIKE_CONFIG: this.#options.runtimeConfigPath,
        TURNPIKE_PORT: String(port),
        TURNPIKE_HOST: "127.0.0.1",
        TURNPIKE_WORKER_ID: `${deployment}-${port}`,
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.#options.say(`started worker ${deployment} on 127.0.0.1:${port} (log: ${logPath})`);
    return { process: child, port, ready: false };
  }

  async #reportStatus(deployment: V1Deployment, pods: LocalPod[], wantsGpu: boolean): Promise<void> {
    const ready = pods.filter((p) => p.ready).length;
    const replicas = deployment.spec?.replicas ?? 1;
    const available = ready >= Math.min(1, replicas);
    const status = {
      observedGeneration: deployment.metadata?.generation,
      replicas: pods.length,
      updatedReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      conditions: [
        {
          type: "Available",
          status: available ? "True" : "False",
          reason: wantsGpu
            ? "NoGpuNode"
            : available
              ? "MinimumReplicasAvailable"
              : "MinimumReplicasUnavailable",
          message: wantsGpu
            ? "no local node offers a GPU"
            : `${ready}/${replicas} local worker processes ready`,
        },
      ],
    };
    const key = JSON.stringify(status);
    const name = deployment.metadata!.name!;
    if (this.#reported.get(name) === key) return;
    await K8s(kind.Deployment).PatchStatus({
      metadata: { name, namespace: this.#options.namespace },
      status,
    } as never);
    this.#reported.set(name, key);
  }
}

async function isReady(port: number): Promise<boolean> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(1000) });
    return response.ok;
  } catch {
    return false;
  }
}

async function stopPod(pod: LocalPod): Promise<void> {
  if (pod.process.exitCode !== null || pod.process.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => pod.process.once("exit", () => resolve()));
  pod.process.kill("SIGTERM");
  const timer = setTimeout(() => pod.process.kill("SIGKILL"), 30_000);
  await exited;
  clearTimeout(timer);
}

/** Reads the runtime config file written by a LocalKubelet (for callers that wait on it). */
export function readLocalRuntimeConfig(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/**
 * One Pod bound to the node agent: its volumes kept in sync, its containers run as local processes
 * (ports mapped to free local ports), and its status (phase, conditions, container statuses)
 * computed the way the kubelet reports it.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { V1Pod, V1PodCondition, V1PodStatus } from "@kubernetes/client-node";
import { freePort } from "../control-plane.js";
import { ContainerRunner } from "./container.js";
import type { KubeApi } from "./kube-api.js";
import {
  ContainerConfigError,
  entryPoint,
  localiseEnv,
  pvcRootEnv,
  resolveEnv,
  syncVolumes,
} from "./pod-spec.js";

export interface PodRunnerOptions {
  api: KubeApi;
  repoRoot: string;
  /** Where this Pod's volumes, logs and pid files go. */
  dir: string;
  /** Base environment of every process (PATH, HOME and the like). */
  baseEnv: Record<string, string>;
  /** Local directory holding one directory per PersistentVolumeClaim name. */
  pvcRoot: string;
  say(line: string): void;
}

const iso = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export class PodRunner {
  #pod: V1Pod;
  readonly #o: PodRunnerOptions;
  readonly #containers: ContainerRunner[] = [];
  readonly #ports = new Map<string, Map<number, number>>();
  #volumeDirs = new Map<string, string>();
  #volumeError?: ContainerConfigError;
  readonly #transitions = new Map<string, { status: string; at: string }>();
  readonly #startTime = iso();
  #stopping?: Promise<void>;

  constructor(pod: V1Pod, options: PodRunnerOptions) {
    this.#pod = pod;
    this.#o = options;
  }

  get uid(): string {
    return this.#pod.metadata!.uid!;
  }

  /** Maps ports and starts every container. */
  async start(): Promise<void> {
    mkdirSync(this.#o.dir, { recursive: true });
    const spec = this.#pod.spec!;
    for (const container of spec.containers) {
      const ports = new Map<number, number>();
      for (const port of container.ports ?? []) ports.set(port.containerPort, await freePort());
      this.#ports.set(container.name, ports);
      this.#containers.push(
        new ContainerRunner({
          container,
          restartPolicy: spec.restartPolicy ?? "Always",
          ports,
          dir: this.#o.dir,
          prepare: async () => {
            if (this.#volumeError) throw this.#volumeError;
            const entry = entryPoint(container, this.#o.repoRoot);
            const env = localiseEnv(
              await resolveEnv(this.#o.api, this.#pod, container),
              container,
              this.#volumeDirs,
              ports,
            );
            // Listen on loopback only: every address this agent uses stays inside the machine.
            return {
              ...entry,
              cwd: this.#o.repoRoot,
              env: {
                ...this.#o.baseEnv,
                TURNPIKE_HOST: "127.0.0.1",
                ...pvcRootEnv(container, this.#volumeDirs, this.#o.dir),
                ...env,
              },
            };
          },
          graceSeconds: () => this.#pod.spec?.terminationGracePeriodSeconds ?? 30,
          say: (line) => this.#o.say(`${this.#pod.metadata!.namespace}/${this.#pod.metadata!.name}: ${line}`),
        }),
      );
    }
    await this.sync(this.#pod);
    await Promise.all(this.#containers.map((c) => c.start()));
  }

  /** Takes the Pod's latest version and refreshes its volumes (ConfigMap updates reach the files). */
  async sync(pod: V1Pod): Promise<void> {
    this.#pod = pod;
    try {
      this.#volumeDirs = await syncVolumes(this.#o.api, pod, join(this.#o.dir), this.#o.pvcRoot);
      this.#volumeError = undefined;
    } catch (error) {
      this.#volumeError =
        error instanceof ContainerConfigError
          ? error
          : new ContainerConfigError("ContainerCreating", String(error));
    }
  }

  /** The local port of a container port (tests and `make run` reach the processes through it). */
  localPort(container: string, containerPort: number): number | undefined {
    return this.#ports.get(container)?.get(containerPort);
  }

  /** SIGTERM to every container, SIGKILL after `graceSeconds`; idempotent. */
  stop(graceSeconds: number): Promise<void> {
    this.#stopping ??= Promise.all(this.#containers.map((c) => c.stop(graceSeconds))).then(() => undefined);
    return this.#stopping;
  }

  #condition(type: string, ok: boolean, reason?: string): V1PodCondition {
    const status = ok ? "True" : "False";
    const previous = this.#transitions.get(type);
    const at = previous && previous.status === status ? previous.at : iso();
    this.#transitions.set(type, { status, at });
    return {
      type,
      status,
      lastProbeTime: null as unknown as undefined,
      lastTransitionTime: at as never,
      ...(reason ? { reason } : {}),
    };
  }

  /** The status the kubelet would report now. */
  status(): V1PodStatus {
    const images = new Map(this.#pod.spec!.containers.map((c) => [c.name, c.image ?? ""]));
    const statuses = this.#containers.map((c) => c.status(images.get(c.name)!));
    const allReady = statuses.length > 0 && statuses.every((s) => s.ready);
    const anyRunning = statuses.some((s) => s.state?.running);
    const allTerminated = statuses.length > 0 && statuses.every((s) => s.state?.terminated);
    const phase = allTerminated
      ? statuses.every((s) => s.state?.terminated?.exitCode === 0)
        ? "Succeeded"
        : "Failed"
      : anyRunning || statuses.some((s) => (s.restartCount ?? 0) > 0)
        ? "Running"
        : "Pending";
    return {
      phase,
      hostIP: "127.0.0.1",
      hostIPs: [{ ip: "127.0.0.1" }],
      podIP: "127.0.0.1",
      podIPs: [{ ip: "127.0.0.1" }],
      startTime: this.#startTime as never,
      conditions: [
        this.#condition("PodReadyToStartContainers", true),
        this.#condition("Initialized", true),
        this.#condition("ContainersReady", allReady, allReady ? undefined : "ContainersNotReady"),
        this.#condition("Ready", allReady, allReady ? undefined : "ContainersNotReady"),
      ],
      containerStatuses: statuses,
    };
  }
}

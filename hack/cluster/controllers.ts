/**
 * The real kube-controller-manager and kube-scheduler for a throwaway control plane (hack/control-plane.ts):
 * Deployments get ReplicaSets and Pods, HPAs act, ownerReferences are garbage-collected, PDBs are
 * tracked, and Pods are bound to the node agent's Node. Only what a one-node local cluster needs runs.
 */
import type { ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { freePort, launch, stopProcess, waitFor, type ControlPlane } from "../control-plane.js";

export interface KubeControllers {
  stop(): Promise<void>;
}

export interface KubeControllersOptions {
  /** How often the HPA controller re-evaluates (kube default 15 s). */
  hpaSyncSeconds?: number;
  /** Start kube-scheduler too (default true); without it Pods must be bound by hand. */
  scheduler?: boolean;
}

/**
 * Controllers a one-node local cluster needs. Left out on purpose: node lifecycle (the node agent
 * heartbeats itself), endpoints (Endpoints refuse loopback addresses), cloud controllers, and the
 * volume controllers but the binder (which binds the claims `make run` makes to local volumes).
 */
const CONTROLLERS = [
  "deployment-controller",
  "replicaset-controller",
  "horizontal-pod-autoscaler-controller",
  "garbage-collector-controller",
  "disruption-controller",
  "serviceaccount-controller",
  "serviceaccount-token-controller",
  "namespace-controller",
  "persistentvolume-binder-controller",
];

/** Resolves true when `url` answers 200 (the components serve /healthz on a self-signed cert). */
function healthy(url: string): Promise<boolean> {
  return new Promise((resolveOk) => {
    const req = request(url, { rejectUnauthorized: false, timeout: 2000 }, (res) => {
      res.resume();
      resolveOk(res.statusCode === 200);
    });
    req.on("error", () => resolveOk(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** Flags both components share: the admin kubeconfig, loopback serving, no leader election. */
function commonFlags(plane: ControlPlane, port: number, certDir: string): string[] {
  return [
    `--kubeconfig=${plane.kubeconfig}`,
    `--authentication-kubeconfig=${plane.kubeconfig}`,
    `--authorization-kubeconfig=${plane.kubeconfig}`,
    "--bind-address=127.0.0.1",
    `--secure-port=${port}`,
    `--cert-dir=${certDir}`,
    "--leader-elect=false",
    "--v=1",
  ];
}

/** Starts kube-controller-manager (and kube-scheduler) against `plane`; resolves once both are healthy. */
export async function startKubeControllers(
  plane: ControlPlane,
  options: KubeControllersOptions = {},
): Promise<KubeControllers> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await stopProcess(child);
  };
  try {
    const kcmPort = await freePort();
    const kcmDir = join(plane.stateDir, "kube-controller-manager");
    mkdirSync(kcmDir, { recursive: true });
    const kcmLog = join(plane.stateDir, "kube-controller-manager.log");
    children.push(
      launch(
        join(plane.binDir, "kube-controller-manager"),
        [
          ...commonFlags(plane, kcmPort, kcmDir),
          `--controllers=${CONTROLLERS.join(",")}`,
          `--service-account-private-key-file=${join(plane.certDir, "sa.key")}`,
          `--root-ca-file=${join(plane.certDir, "ca.crt")}`,
          // One identity (the admin) for every controller: no per-controller RBAC to bootstrap.
          "--use-service-account-credentials=false",
          `--horizontal-pod-autoscaler-sync-period=${options.hpaSyncSeconds ?? 5}s`,
        ],
        kcmLog,
      ),
    );
    if (options.scheduler ?? true) {
      const schedulerPort = await freePort();
      const schedulerDir = join(plane.stateDir, "kube-scheduler");
      mkdirSync(schedulerDir, { recursive: true });
      const schedulerLog = join(plane.stateDir, "kube-scheduler.log");
      children.push(
        launch(
          join(plane.binDir, "kube-scheduler"),
          commonFlags(plane, schedulerPort, schedulerDir),
          schedulerLog,
        ),
      );
      await waitFor(
        "kube-scheduler",
        () => healthy(`https://127.0.0.1:${schedulerPort}/healthz`),
        60_000,
        schedulerLog,
      );
    }
    await waitFor(
      "kube-controller-manager",
      () => healthy(`https://127.0.0.1:${kcmPort}/healthz`),
      60_000,
      kcmLog,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

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

/** A component's secure port, its state directory and its log file, under the plane's state. */
async function componentPlace(plane: ControlPlane, name: string) {
  const port = await freePort();
  const dir = join(plane.stateDir, name);
  mkdirSync(dir, { recursive: true });
  return {
    port,
    dir,
    log: join(plane.stateDir, `${name}.log`),
    healthz: `https://127.0.0.1:${port}/healthz`,
  };
}

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
    const kcm = await componentPlace(plane, "kube-controller-manager");
    children.push(
      launch(
        join(plane.binDir, "kube-controller-manager"),
        [
          ...commonFlags(plane, kcm.port, kcm.dir),
          `--controllers=${CONTROLLERS.join(",")}`,
          `--service-account-private-key-file=${join(plane.certDir, "sa.key")}`,
          `--root-ca-file=${join(plane.certDir, "ca.crt")}`,
          // One identity (the admin) for every controller: no per-controller RBAC to bootstrap.
          "--use-service-account-credentials=false",
          `--horizontal-pod-autoscaler-sync-period=${options.hpaSyncSeconds ?? 5}s`,
        ],
        kcm.log,
      ),
    );
    if (options.scheduler ?? true) {
      const scheduler = await componentPlace(plane, "kube-scheduler");
      children.push(
        launch(
          join(plane.binDir, "kube-scheduler"),
          commonFlags(plane, scheduler.port, scheduler.dir),
          scheduler.log,
        ),
      );
      await waitFor("kube-scheduler", () => healthy(scheduler.healthz), 60_000, scheduler.log);
    }
    await waitFor("kube-controller-manager", () => healthy(kcm.healthz), 60_000, kcm.log);
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

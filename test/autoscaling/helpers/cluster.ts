/**
 * A whole local cluster for the autoscaling tests, separate from the shared harness control plane
 * (its controllers would act on every other test's objects): etcd + kube-apiserver with the
 * aggregation layer, the real kube-controller-manager and kube-scheduler, KEDA's operator and
 * metrics adapter, and the node agent running Pods as local processes. Points this test process's
 * KUBECONFIG (and the harness's kubectl) at it.
 */
import { startKubeControllers, type KubeControllers } from "../../../hack/cluster/controllers.js";
import { startKeda, type Keda } from "../../../hack/cluster/keda.js";
import {
  installCrds,
  kedaCrdDir,
  startControlPlane,
  type ControlPlane,
} from "../../../hack/control-plane.js";
import { NodeAgent } from "../../../hack/node-agent/agent.js";
import { repoRoot } from "../../harness/kube.js";

export interface LocalCluster {
  plane: ControlPlane;
  agent: NodeAgent;
  stop(): Promise<void>;
}

export async function startLocalCluster(options: { keda: boolean }): Promise<LocalCluster> {
  const say = (line: string) => process.env.TURNPIKE_VERBOSE && process.stderr.write(`[cluster] ${line}\n`);
  const plane = await startControlPlane();
  const stops: Array<() => Promise<void>> = [() => plane.stop()];
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => undefined);
  };
  try {
    process.env.KUBECONFIG = plane.kubeconfig;
    process.env.TURNPIKE_KUBE_BIN = plane.binDir;
    process.env.TURNPIKE_AUDIT_LOG = plane.auditLog;
    await installCrds(plane.kubeconfig, plane.binDir);
    await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
    const controllers: KubeControllers = await startKubeControllers(plane, { hpaSyncSeconds: 2 });
    stops.push(() => controllers.stop());
    if (options.keda) {
      const keda: Keda = await startKeda(plane);
      stops.push(() => keda.stop());
    }
    const agent = new NodeAgent({ kubeconfig: plane.kubeconfig, repoRoot, stateDir: plane.stateDir, say });
    await agent.start();
    // Containers get a short grace at teardown: the tests wait for their drains themselves.
    stops.push(() => agent.stop(5));
    return { plane, agent, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

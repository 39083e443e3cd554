/**
 * The node agent's Node object: this machine's allocatable CPU and memory (no GPU), Ready while the
 * agent heartbeats. No node-lifecycle controller runs locally, so the agent removes the not-ready
 * taint the apiserver's admission puts on a new Node itself.
 */
import { cpus, hostname, release, totalmem } from "node:os";
import { KubeApi, KubeApiError } from "./kube-api.js";

export interface NodeOptions {
  name: string;
  /**
   * Allocatable CPU is this machine's cores times this factor: the agent's processes share the
   * cores unconfined (no cgroups), so requests are a scheduling hint here, not a reservation.
   */
  cpuOvercommit: number;
}

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

function nodeStatus(options: NodeOptions) {
  const cpu = String(cpus().length * options.cpuOvercommit);
  const memory = `${Math.floor(totalmem() / 1024)}Ki`;
  const resources = { cpu, memory, pods: "110", "ephemeral-storage": "20Gi" };
  const condition = (type: string, status: string, reason: string, message: string) => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now(),
  });
  return {
    capacity: resources,
    allocatable: resources,
    conditions: [
      condition("Ready", "True", "KubeletReady", "turnpike node agent is running pods as local processes"),
      condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "no memory pressure tracked"),
      condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure tracked"),
      condition("PIDPressure", "False", "KubeletHasSufficientPID", "no PID pressure tracked"),
    ],
    addresses: [
      { type: "InternalIP", address: "127.0.0.1" },
      { type: "Hostname", address: hostname() },
    ],
    nodeInfo: {
      machineID: "",
      systemUUID: "",
      bootID: "",
      kernelVersion: release(),
      osImage: "local processes",
      containerRuntimeVersion: "turnpike-node-agent://0.1.0",
      kubeletVersion: "v1.34.4",
      kubeProxyVersion: "",
      operatingSystem: "linux",
      architecture: "amd64",
    },
  };
}

/** Creates (or takes over) the Node, clears its taints and reports its status; returns a heartbeat. */
export async function registerNode(api: KubeApi, options: NodeOptions): Promise<() => Promise<void>> {
  const path = `/api/v1/nodes/${options.name}`;
  try {
    await api.call("POST", "/api/v1/nodes", {
      apiVersion: "v1",
      kind: "Node",
      metadata: {
        name: options.name,
        labels: {
          "kubernetes.io/hostname": options.name,
          "kubernetes.io/os": "linux",
          "kubernetes.io/arch": "amd64",
          "node.turnpike.dev/local-processes": "true",
        },
      },
    });
  } catch (error) {
    if (!(error instanceof KubeApiError && error.status === 409)) throw error;
  }
  await api.call(
    "PATCH",
    path,
    { spec: { taints: null, unschedulable: false } },
    "application/merge-patch+json",
  );
  const heartbeat = async () => {
    await api.call(
      "PATCH",
      `${path}/status`,
      { status: nodeStatus(options) },
      "application/strategic-merge-patch+json",
    );
  };
  await heartbeat();
  return heartbeat;
}

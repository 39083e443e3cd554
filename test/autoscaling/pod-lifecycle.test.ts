// The real controllers and the node agent carry an InferenceModel's workers (no KEDA here):
// a kill -9'd worker is restarted by the node agent with its restart count visible in `kubectl get
// pods` and nothing lost; a spec change rolls the workers through a real ReplicaSet rollout with
// the PDB respected and nothing lost; deleting the model garbage-collects its children through
// ownerReferences and handles its queue as `retainOnDelete` says.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectlOk } from "../harness/kube.js";
import { eventually } from "../operator/helpers/operator-process.js";
import { startLocalCluster, type LocalCluster } from "./helpers/cluster.js";
import { modelEnv, type ModelEnv } from "./helpers/model-env.js";
import { recordCounts, submit } from "./helpers/requests.js";

let cluster: LocalCluster | undefined;
let env: ModelEnv | undefined;

beforeAll(async () => {
  cluster = await startLocalCluster({ keda: false });
  env = await modelEnv("as-pods", { name: "steady", scaling: { minReplicas: 1, maxReplicas: 1 } });
}, 300_000);

afterAll(async () => {
  await env?.cleanup().catch(() => undefined);
  await cluster?.stop();
}, 180_000);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function pods(selector: string): Promise<any[]> {
  return JSON.parse(await kubectlOk(["get", "pods", "-n", env!.ns, "-l", selector, "-o", "json"])).items;
}

const workerSelector = (model: string) => `app.kubernetes.io/component=worker,turnpike.dev/owner=${model}`;

async function readyPods(model: string, count: number) {
  return eventually(
    `${count} ready ${model} pods`,
    async () => {
      const list = (await pods(workerSelector(model))).filter(
        (p) =>
          !p.metadata.deletionTimestamp &&
          p.status?.conditions?.some(
            (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
          ),
      );
      return list.length === count ? list : undefined;
    },
    180_000,
  );
}

async function allRecorded(ids: string[]) {
  await eventually(
    "a final record for every accepted request",
    async () => ((await recordCounts(env!, ids)).size === ids.length ? true : undefined),
    180_000,
  );
  const counts = await recordCounts(env!, ids);
  expect([...counts.values()].every((n) => n === 1)).toBe(true);
}

describe("worker pods under the real controllers and the node agent", () => {
  it("restarts a worker killed with kill -9; the restart count shows and nothing is lost", async () => {
    const [pod] = await readyPods("steady", 1);
    const name = pod.metadata.name as string;
    const local = cluster!.agent.endpoints().find((e) => e.name === name)!;
    const pid = Number(readFileSync(join(local.dir, "worker.pid"), "utf8"));
    const ids: string[] = [];
    for (let seq = 1; seq <= 10; seq++) ids.push(await submit(env!, "steady", seq));
    process.kill(pid, "SIGKILL");
    for (let seq = 11; seq <= 20; seq++) ids.push(await submit(env!, "steady", seq));

    const restarted = await eventually(
      "the worker restarted and ready again",
      async () => {
        const [p] = await pods(workerSelector("steady"));
        const status = p?.status?.containerStatuses?.[0];
        return p?.metadata.name === name && status?.restartCount >= 1 && status.ready ? p : undefined;
      },
      120_000,
    );
    expect(restarted.status.containerStatuses[0].lastState.terminated.exitCode).toBe(137);
    const table = await kubectlOk(["get", "pods", "-n", env!.ns, name]);
    expect(table).toMatch(new RegExp(`${name}\\s+1/1\\s+Running\\s+1`));
    await allRecorded(ids);
  }, 600_000);

  it("rolls a spec change through a real ReplicaSet rollout, PDB respected, nothing lost", async () => {
    await env!.applyModel("roll", { minReplicas: 2, maxReplicas: 2 });
    const before = await readyPods("roll", 2);
    const oldHash = before[0].metadata.labels["pod-template-hash"];
    const pdb = await eventually("the PDB tracked by the disruption controller", async () => {
      const p = await env!.get("pdb", "roll");
      return p?.status?.observedGeneration ? p : undefined;
    });
    const ids: string[] = [];
    const sending = (async () => {
      for (let seq = 1; seq <= 40; seq++) {
        ids.push(await submit(env!, "roll", seq));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    let fewestReady = Infinity;
    const sampling = setInterval(() => {
      void env!.get("deployment", "roll").then((d) => {
        fewestReady = Math.min(fewestReady, d?.status?.availableReplicas ?? 0);
      });
    }, 300);
    // A template change: the resources of the workers.
    await env!.applyModel(
      "roll",
      { minReplicas: 2, maxReplicas: 2 },
      { resources: { requests: { cpu: "20m" } } },
    );
    const after = await eventually(
      "every worker from a new ReplicaSet",
      async () => {
        const list = await readyPods("roll", 2);
        return list.every((p) => p.metadata.labels["pod-template-hash"] !== oldHash) ? list : undefined;
      },
      240_000,
    );
    clearInterval(sampling);
    await sending;
    const replicaSets = JSON.parse(
      await kubectlOk(["get", "rs", "-n", env!.ns, "-l", workerSelector("roll"), "-o", "json"]),
    ).items;
    expect(replicaSets.length).toBeGreaterThanOrEqual(2);
    expect(after).toHaveLength(2);
    const minAvailable = pdb.spec.minAvailable ?? 2 - Number(pdb.spec.maxUnavailable ?? 0);
    expect(fewestReady).toBeGreaterThanOrEqual(Number(minAvailable));
    await allRecorded(ids);
  }, 600_000);

  it("garbage-collects the children of a deleted model; the queue goes unless retainOnDelete", async () => {
    await env!.applyModel("kept", { minReplicas: 1, maxReplicas: 1 }, { queue: { retainOnDelete: true } });
    await readyPods("kept", 1);
    for (const model of ["steady", "kept"]) {
      await kubectlOk(["delete", "inferencemodel", model, "-n", env!.ns, "--wait=false"]);
    }
    for (const model of ["steady", "kept"]) {
      await eventually(
        `${model}'s Deployment, ReplicaSets and Pods collected`,
        async () => {
          const left = await kubectlOk([
            "get",
            "deployments,replicasets,pods,pdb,services",
            "-n",
            env!.ns,
            "-l",
            `turnpike.dev/owner=${model}`,
            "-o",
            "name",
          ]);
          return left.trim() === "" ? true : undefined;
        },
        180_000,
      );
    }
    // The finalizer deletes the queue once the last worker has stopped, then lets the model go.
    for (const model of ["steady", "kept"]) {
      await eventually(
        `InferenceModel ${model} gone (its finalizer done)`,
        async () => {
          const left = await kubectlOk(["get", "inferencemodels", "-n", env!.ns, "-o", "name"]);
          return left.split("\n").some((line) => line.trim().endsWith(`/${model}`)) ? undefined : true;
        },
        180_000,
      );
    }
    await expect(env!.inst.queueDepth("steady")).rejects.toThrow();
    expect(await env!.inst.queueDepth("kept")).toBeGreaterThanOrEqual(0);
  }, 600_000);
});

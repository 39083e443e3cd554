// KEDA acts on the ScaledObjects the operator writes, through the real HPA controller reading
// KEDA's external metrics over the aggregation layer, and the node agent runs what results:
// a synchronous request to a model at zero replicas is answered (KEDA activates it); a backlog above
// targetQueueDepth raises the replicas to the maximum with the scale subresource, the REPLICAS
// column and the HPA agreeing; after cooldownSeconds the model goes back to zero with every
// accepted request recorded exactly once.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectlOk } from "../harness/kube.js";
import { eventually } from "../operator/helpers/operator-process.js";
import { startLocalCluster, type LocalCluster } from "./helpers/cluster.js";
import { modelEnv, type ModelEnv } from "./helpers/model-env.js";
import { inferSync, recordCounts, submit } from "./helpers/requests.js";

let cluster: LocalCluster | undefined;
let env: ModelEnv | undefined;

beforeAll(async () => {
  cluster = await startLocalCluster({ keda: true });
  env = await modelEnv("as-keda", {
    name: "zero",
    scaling: { minReplicas: 0, maxReplicas: 2, cooldownSeconds: 600 },
  });
}, 600_000);

afterAll(async () => {
  if (cluster) await kubectlOk(["uncordon", cluster.agent.nodeName]).catch(() => undefined);
  await env?.cleanup().catch(() => undefined);
  await cluster?.stop();
}, 180_000);

const selector = (model: string) => `app.kubernetes.io/component=worker,turnpike.dev/owner=${model}`;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function workerPods(model: string): Promise<any[]> {
  return JSON.parse(await kubectlOk(["get", "pods", "-n", env!.ns, "-l", selector(model), "-o", "json"]))
    .items;
}

async function scaledObjectReady(model: string) {
  await eventually(
    `KEDA's ScaledObject ${model} Ready`,
    async () => {
      const so = await env!.get("scaledobject", model);
      return so?.status?.conditions?.some(
        (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
      )
        ? true
        : undefined;
    },
    120_000,
  );
}

async function allRecordedOnce(ids: string[]) {
  await eventually(
    "a final record for every accepted request",
    async () => ((await recordCounts(env!, ids)).size === ids.length ? true : undefined),
    240_000,
  );
  expect([...(await recordCounts(env!, ids)).values()].every((n) => n === 1)).toBe(true);
}

describe("KEDA, the HPA controller and the node agent", () => {
  it("answers a synchronous request to a model at zero replicas", async () => {
    await scaledObjectReady("zero");
    expect(await workerPods("zero")).toHaveLength(0);
    const answer = await inferSync(env!, "zero", 7, 240_000);
    process.stdout.write(`[autoscaling] scale from zero: request to answer ${answer.ms} ms\n`);
    expect(answer.status).toBe(200);
    expect(answer.seq).toBe(7);
    const im = await env!.get("inferencemodel", "zero");
    expect(im.spec.replicas).toBeGreaterThanOrEqual(1);
  }, 600_000);

  it("scales out to the maximum on a backlog; scale subresource, REPLICAS and HPA agree", async () => {
    // Cordoned, no worker can consume: the backlog stays until KEDA and the HPA have acted.
    await kubectlOk(["cordon", cluster!.agent.nodeName]);
    try {
      await scaleOut();
    } finally {
      await kubectlOk(["uncordon", cluster!.agent.nodeName]);
    }
  }, 600_000);

  async function scaleOut() {
    await env!.applyModel("wide", {
      minReplicas: 1,
      maxReplicas: 3,
      targetQueueDepth: 5,
      cooldownSeconds: 300,
    });
    await scaledObjectReady("wide");
    const ids: string[] = [];
    for (let seq = 1; seq <= 40; seq++) ids.push(await submit(env!, "wide", seq));
    await eventually(
      "the HPA asking for 3 replicas",
      async () =>
        (await env!.get("hpa", "keda-hpa-wide"))?.status?.desiredReplicas === 3 ? true : undefined,
      180_000,
    );
    await kubectlOk(["uncordon", cluster!.agent.nodeName]);
    const agreed = await eventually(
      "3 ready workers, and every view of the replica count at 3",
      async () => {
        const ready = (await workerPods("wide")).filter((p) =>
          p.status?.containerStatuses?.every((s: { ready: boolean }) => s.ready),
        );
        const scale = JSON.parse(
          await kubectlOk([
            "get",
            "--raw",
            `/apis/turnpike.dev/v1alpha1/namespaces/${env!.ns}/inferencemodels/wide/scale`,
          ]),
        );
        const hpa = await env!.get("hpa", "keda-hpa-wide");
        const column = (await kubectlOk(["get", "inferencemodels", "wide", "-n", env!.ns, "--no-headers"]))
          .trim()
          .split(/\s+/)[2];
        const views = {
          ready: ready.length,
          scaleSpec: scale.spec.replicas,
          scaleStatus: scale.status.replicas,
          column: Number(column),
          hpaCurrent: hpa?.status?.currentReplicas,
          hpaDesired: hpa?.status?.desiredReplicas,
        };
        return Object.values(views).every((v) => v === 3) ? views : undefined;
      },
      240_000,
    );
    expect(agreed.column).toBe(3);
    await allRecordedOnce(ids);
  }

  it("goes back to zero after cooldownSeconds with every accepted request recorded once", async () => {
    // Batches wait up to 2 s in a worker (unacknowledged, still counted by the trigger).
    await env!.applyModel(
      "ebb",
      { minReplicas: 0, maxReplicas: 2, targetQueueDepth: 4, cooldownSeconds: 5 },
      { batching: { maxBatchSize: 8, maxDelayMs: 2000 } },
    );
    await scaledObjectReady("ebb");
    const ids: string[] = [];
    for (let seq = 1; seq <= 24; seq++) {
      ids.push(await submit(env!, "ebb", seq));
      await new Promise((r) => setTimeout(r, 200));
    }
    await eventually(
      "workers started for the backlog",
      async () => ((await env!.get("inferencemodel", "ebb"))?.spec?.replicas >= 1 ? true : undefined),
      180_000,
    );
    await allRecordedOnce(ids);
    await eventually(
      "back at zero replicas with no worker left",
      async () => {
        const im = await env!.get("inferencemodel", "ebb");
        return im?.spec?.replicas === 0 && (await workerPods("ebb")).length === 0 ? true : undefined;
      },
      240_000,
    );
    expect([...(await recordCounts(env!, ids)).values()].every((n) => n === 1)).toBe(true);
  }, 600_000);
});

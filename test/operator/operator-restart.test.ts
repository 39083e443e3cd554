/**
 * End to end: the real operator process (Pepr watch mode, its own ServiceAccount so the audit log
 * can tell its writes apart) reconciles the samples; restarted, it finds everything as it left it
 * and writes nothing, across several resyncs. Then the resync is shown to be alive: usage that
 * changes only in Redis reaches status within one resync period.
 */
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { QuotaStore } from "../../runtime/shared/quota/index.js";
import * as kube from "../harness/kube.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import * as op from "./helpers/operator-process.js";

const RESYNC_SECONDS = 2;
const MODELS: Array<[string, number]> = [
  ["ocr-rec", 1],
  ["ocr-rec-gpu", 1],
  ["ocr-det", 0],
];

describe("the operator, restarted", () => {
  let namespace: string;
  let kubeconfig: string;
  let user: string;
  let operator: op.OperatorProcess | undefined;
  const outputs: string[] = [];
  const redis = new Redis(serviceUrls().redisUrl);

  const start = async () => {
    operator = await op.startOperator({ kubeconfig, namespaces: [namespace], resyncSeconds: RESYNC_SECONDS });
    await operator.healthy();
  };
  const stop = async () => {
    await operator?.stop();
    outputs.push(operator?.output() ?? "");
    operator = undefined;
  };
  const get = (resource: string, name: string) => op.getJson(namespace, resource, name);
  const ready = async (resource: string, name: string) =>
    op.conditionOf(await get(resource, name))?.status === "True" ? true : undefined;
  const mine = (mark: number) =>
    kube
      .writesSince(mark, user)
      .filter((w) => w.namespace === namespace || w.namespace === "pepr-system" || !w.namespace);

  /** Waits until the operator has made no write for `quietMs`. */
  async function settle(quietMs: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let mark = kube.auditMark();
    let since = Date.now();
    while (Date.now() - since < quietMs) {
      if (Date.now() > deadline)
        throw new Error(`still writing after ${timeoutMs} ms: ${JSON.stringify(mine(mark))}`);
      await new Promise((r) => setTimeout(r, 250));
      if (mine(mark).length > 0) {
        mark = kube.auditMark();
        since = Date.now();
      }
    }
  }

  beforeAll(async () => {
    await op.installOperatorRbac();
    const identity = await op.serviceAccountKubeconfig("turnpike-operator-restart");
    kubeconfig = identity.path;
    user = identity.user;
    namespace = await kube.createNamespace(uniqueName("restart"));
    await op.createRuntimeSecret(namespace);
    // Everything exists before the operator starts: its first resync and the watches' initial
    // list both see it.
    await kube.kubectlOk(["apply", "-n", namespace, "-f", join(kube.repoRoot, "samples")]);
    await start();
    for (const [model, replicas] of MODELS) {
      await op.eventually(`Deployment ${model}`, () => get("deployment", model));
      await op.markDeploymentAvailable(namespace, model, replicas);
    }
    for (const [model] of MODELS)
      await op.eventually(`${model} Ready`, () => ready("inferencemodel", model), 60_000);
    await op.eventually("Pipeline Ready", () => ready("pipelines.turnpike.dev", "ocr"), 30_000);
    for (const quota of ["acme", "hobbyist"])
      await op.eventually(`${quota} Ready`, () => ready("tenantquota", quota));
  }, 180_000);

  afterAll(async () => {
    if (namespace) {
      // Let the operator run the finalizers, then remove whatever is left.
      if (!operator && kubeconfig) await start().catch(() => undefined);
      await kube.kubectl(["delete", "-n", namespace, "-f", join(kube.repoRoot, "samples"), "--wait=false"]);
      await op
        .eventually(
          "finalizers done",
          async () => {
            const left = await kube.kubectl(["get", "turnpike", "-n", namespace, "-o", "name"]);
            return left.stdout.trim() === "" ? true : undefined;
          },
          60_000,
        )
        .catch(() => undefined);
      await stop();
      const keys = await redis.keys(`tp:*${namespace}*`);
      if (keys.length > 0) await redis.del(...keys);
      await op.deleteNamespaceQueues(namespace);
      await kube.deleteNamespace(namespace);
    }
    redis.disconnect();
  }, 120_000);

  it("writes nothing after a restart, over several resyncs", async () => {
    await settle(3 * RESYNC_SECONDS * 1000);
    await stop();
    const restart = kube.auditMark();
    await start();
    // Pepr's own start-up writes: the cache label on its two store objects (the schedule store
    // starts a few seconds after the health endpoint answers).
    const isPeprStore = (w: { resource: string; namespace?: string }) =>
      w.resource === "peprstores" && w.namespace === "pepr-system";
    await op.eventually("Pepr's store start-up", async () =>
      mine(restart).filter(isPeprStore).length >= 2 ? true : undefined,
    );
    const steady = kube.auditMark();
    // Several resync periods, each re-reconciling every object and re-rendering the config.
    await new Promise((r) => setTimeout(r, 4 * RESYNC_SECONDS * 1000));

    // Nothing of Turnpike's was written since the restart...
    expect(mine(restart).filter((w) => !isPeprStore(w))).toEqual([]);
    expect(
      mine(restart)
        .filter(isPeprStore)
        .map((w) => `${w.verb} ${w.name}`),
    ).toEqual(["patch pepr-turnpike-operator-store", "patch pepr-turnpike-operator-schedule"]);
    // ...and, once up, nothing at all by this identity anywhere.
    expect(kube.writesSince(steady, user)).toEqual([]);
  }, 120_000);

  it("still refreshes usage on its resync", async () => {
    const store = new QuotaStore(redis, namespace);
    expect(await store.reserve("acme", "restart-req", 321)).toEqual({ ok: true });
    const mark = kube.auditMark();
    const usage = await op.eventually(
      "usage in status",
      async () => {
        const acme = await get("tenantquota", "acme");
        return acme.status.usage.tokensToday === 321 ? acme.status.usage : undefined;
      },
      4 * RESYNC_SECONDS * 1000,
    );
    expect(usage).toMatchObject({ tokensToday: 321, inFlight: 1 });
    // Exactly the status write that carried it (the minute window may add one more later).
    expect(kube.writesSince(mark, user)[0]).toMatchObject({
      resource: "tenantquotas",
      name: "acme",
      subresource: "status",
      verb: "patch",
    });
    await store.release("acme", "restart-req");
    await stop();
    for (const key of [
      "tp_free_3b7e1c9a5d2f4e6a8b0c1d2e3f4a5b6c",
      "tp_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
      "tp_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    ]) {
      for (const output of outputs) expect(output).not.toContain(key);
    }
  }, 60_000);
});

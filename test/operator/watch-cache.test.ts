/**
 * The operator as operator/module.ts wires it: reconcilers read children (and the runtime-config
 * renderer reads the operator's own kinds) from watch caches, and the caches' events enqueue
 * owners. Against the real kube-apiserver (KEDA's real CRDs) and RabbitMQ; the tests play the
 * Deployment controller.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadOperatorEnv } from "../../operator/config.js";
import { Controller } from "../../operator/controller.js";
import { inferenceModelRegistration } from "../../operator/inference-model/reconciler.js";
import { renderRuntimeConfig } from "../../operator/runtime-config/render.js";
import { cachedChildKinds, CHILD_KINDS, OWN_KINDS } from "../../operator/shared/children.js";
import { INFERENCE_MODEL_KIND, RUNTIME_CONFIG_MAP } from "../../operator/shared/names.js";
import { MANAGED_BY_TURNPIKE, WatchCache } from "../../operator/shared/watch-cache.js";
import { logger } from "../../runtime/shared/logger.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { applySample, auditMark, kubectl, kubectlOk } from "../harness/kube.js";
import { serviceUrls } from "../harness/services.js";
import * as env from "./helpers/im-env.js";
import { rabbitManagementUrl } from "../harness/services.js";
import { plainSettings } from "./helpers/im-fixtures.js";

const MODEL = "ocr-rec";
let t: env.ModelTestEnv;
let children: WatchCache;
let resources: WatchCache;
let controller: Controller;

beforeAll(async () => {
  // The namespace with its runtime Secret (and a Controller without caches, not used here).
  t = await env.modelTestEnv("cache", plainSettings);
  const log = logger("operator");
  [children, resources] = await Promise.all([
    WatchCache.start(cachedChildKinds(plainSettings), [t.namespace], log, MANAGED_BY_TURNPIKE),
    WatchCache.start(Object.values(OWN_KINDS), [t.namespace], log),
  ]);
  const urls = serviceUrls();
  controller = new Controller({
    env: loadOperatorEnv({
      TURNPIKE_AMQP_URL: urls.amqpUrl,
      TURNPIKE_RABBIT_MANAGEMENT_URL: rabbitManagementUrl(),
      TURNPIKE_REDIS_URL: urls.redisUrl,
      TURNPIKE_WATCH_NAMESPACES: t.namespace,
    }),
    settings: plainSettings,
    kinds: [inferenceModelRegistration],
    renderRuntimeConfig,
    children,
    resources,
    queue: { baseDelayMs: 20, maxDelayMs: 100, maxAttempts: 3 },
  });
  children.onEvent((kind, event, child) => controller.childChanged(kind.kind, event, child));
  // Models are reconciled from the cache: its events start a reconcile too.
  resources.onEvent((kind, _event, object) => controller.resourceChanged(kind.kind, object));
});

afterAll(async () => {
  await controller?.stop();
  await children?.close();
  await resources?.close();
  await env.deleteRabbitQueue(names(t.namespace).modelQueue(MODEL));
  await t?.cleanup();
});

const ready = async () =>
  (await t.model(MODEL)).status?.conditions?.find((c: { type: string }) => c.type === "Ready")?.status;

describe("the operator reading from watch caches", () => {
  it("applies the children, turns Ready on the Deployment's watch event and renders the runtime config", async () => {
    // A fresh apiserver may answer 429 while its own watch cache initializes: the cache retries.
    await env.eventually(async () => (children.synced && resources.synced ? true : undefined));
    await applySample(t.namespace, "inference-model-ocr-cpu.yaml");
    controller.enqueue(INFERENCE_MODEL_KIND, t.namespace, MODEL);
    // Idle, with the rollout unfinished: a model whose Deployment is watched is not polled (no
    // requeue timer); the Deployment's next watch event brings it back.
    await controller.idle();
    expect(await t.children(MODEL)).toEqual(["Deployment/ocr-rec", "ScaledObject/ocr-rec"]);
    expect(await ready()).toBe("False");
    // No enqueue by the test: the cache's Deployment event brings the owner back, for its status
    // only (no queue listing or declaration on the way).
    // The broker's queue listing is held back meanwhile (as on a busy broker): Ready does not wait.
    const inventory = controller.ctx.queues;
    const snapshot = inventory.snapshot.bind(inventory);
    const held: (() => void)[] = [];
    inventory.snapshot = (namespace) =>
      new Promise((resolve) => held.push(() => resolve(snapshot(namespace))));
    try {
      await env.markDeploymentAvailable(t.namespace, MODEL, 1);
      await env.eventually(async () => ((await ready()) === "True" ? true : undefined), 10_000);
    } finally {
      inventory.snapshot = snapshot;
      for (const release of held) release();
    }
    // The runtime config, rendered from the cache of InferenceModels, routes the model.
    controller.ctx.touchRuntimeConfig(t.namespace);
    await controller.idle();
    const config = await env.getJson(t.namespace, "configmap", RUNTIME_CONFIG_MAP);
    expect(Object.values(config.data as Record<string, string>).join("")).toContain(`"${MODEL}"`);
  });

  it("makes zero writes on a no-op resync", async () => {
    await controller.idle();
    const mark = auditMark();
    await controller.resync();
    await controller.idle();
    expect(t.writesInNamespace(mark)).toEqual([]);
  });

  it("recreates a deleted child from the watch's delete event", async () => {
    await kubectlOk(["delete", "scaledobject.keda.sh", MODEL, "-n", t.namespace, "--wait=true"]);
    await env.eventually(async () =>
      (await kubectl(["get", "scaledobject.keda.sh", MODEL, "-n", t.namespace])).code === 0
        ? true
        : undefined,
    );
  });

  it("does not let an own write's answer hide a newer version the watch delivered first", async () => {
    const kind = CHILD_KINDS.ScaledObject;
    const answer = (await children.get(kind, t.namespace, MODEL))!;
    // Someone else's write after the operator's (as a Deployment's status after its apply).
    await kubectlOk(["annotate", "scaledobject.keda.sh", MODEL, "-n", t.namespace, "example.com/later=yes"]);
    await env.eventually(async () =>
      (await children.get(kind, t.namespace, MODEL))?.metadata?.annotations?.["example.com/later"]
        ? true
        : undefined,
    );
    // The answer to the operator's own write arrives after the watch event of the newer version.
    children.applied(kind, answer);
    const read = await children.get(kind, t.namespace, MODEL);
    expect(read?.metadata?.annotations?.["example.com/later"]).toBe("yes");
    // The answer is recognised as the operator's own write (its echo needs no full reconcile).
    expect(children.isOwnWrite(kind, answer)).toBe(true);
    expect(children.isOwnWrite(kind, read!)).toBe(false);
  });

  it("reads a kind the apiserver does not serve from the apiserver (as empty), not from a cache", async () => {
    const missing = { group: "nothing.turnpike.dev", version: "v1", kind: "Nothing", plural: "nothings" };
    const cache = await WatchCache.start([missing], [t.namespace], logger("operator"));
    try {
      expect(cache.synced).toBe(false);
      expect(await cache.list(missing, t.namespace, {})).toEqual([]);
      expect(await cache.get(missing, t.namespace, "x")).toBeUndefined();
    } finally {
      await cache.close();
    }
  });
});

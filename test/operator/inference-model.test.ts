/**
 * The InferenceModel reconciler against the real kube-apiserver (with KEDA's real CRDs) and the
 * real RabbitMQ: children, queue arguments, status, updates, pruning, zero-write resyncs,
 * permanent and transient failures, and the finalizer (lifecycle cases: inference-model-lifecycle). The apiserver runs no controller-manager,
 * so tests play the Deployment controller (status subresource) and never rely on garbage collection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Controller } from "../../operator/controller.js";
import { loadOperatorEnv } from "../../operator/config.js";
import { desiredChildren } from "../../operator/inference-model/desired.js";
import { namespaceTriggerAuthentication } from "../../operator/inference-model/desired-autoscaling.js";
import { TRIGGER_AUTHENTICATION } from "../../operator/inference-model/naming.js";
import { declareModelTopology, ensureModelQueue } from "../../operator/inference-model/queue.js";
import { inferenceModelRegistration } from "../../operator/inference-model/reconciler.js";
import { isRetryable, PermanentError, TransientError } from "../../operator/shared/errors.js";
import { DESIRED_HASH } from "../../operator/shared/labels.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { applySample, auditMark, kubectlOk } from "../harness/kube.js";
import {
  deleteRabbitQueue,
  eventually,
  getJson,
  markDeploymentAvailable,
  modelTestEnv,
  publishTo,
  rabbitQueue,
  rejectFrom,
  type ModelTestEnv,
} from "./helpers/im-env.js";
import { plainSettings } from "./helpers/im-fixtures.js";

const MODEL = "ocr-rec";

let t: ModelTestEnv;
let queue: string;

const reconcile = (name = MODEL) => t.reconcile(name);
const model = (name = MODEL) => t.model(name);
const condition = (type: string, name = MODEL) => t.condition(name, type);
const children = (name = MODEL) => t.children(name);
const patchModel = (patch: object, name = MODEL) => t.patchModel(name, patch);
const warnings = (name = MODEL) => t.warnings(name);
/** Degraded as one line ("False Reconciled: " when fine), so a failure shows its reason and message. */
const degradedLine = async (name = MODEL) => {
  const c = await condition("Degraded", name);
  return c && `${c.status} ${c.reason}: ${c.message}`;
};

beforeAll(async () => {
  t = await modelTestEnv("im", plainSettings);
  queue = names(t.namespace).modelQueue(MODEL);
  await applySample(t.namespace, "inference-model-ocr-cpu.yaml");
});

afterAll(async () => {
  await deleteRabbitQueue(queue);
  await t?.cleanup();
});

describe("InferenceModel reconciler (CPU sample)", () => {
  it("creates exactly the desired children, the quorum queue and a Progressing status", async () => {
    // A model's own TriggerAuthentication from before they were shared per namespace: pruned.
    const formerAuth = {
      apiVersion: "keda.sh/v1alpha1",
      kind: "TriggerAuthentication",
      metadata: {
        name: `${MODEL}-rabbitmq`,
        namespace: t.namespace,
        labels: {
          "app.kubernetes.io/managed-by": "turnpike",
          "turnpike.dev/owner-kind": "inferencemodel",
          "turnpike.dev/owner": MODEL,
        },
      },
      spec: { secretTargetRef: [{ parameter: "host", name: "turnpike-runtime", key: "x" }] },
    };
    await kubectlOk(["apply", "-f", "-"], JSON.stringify(formerAuth));
    // A worker Service from before: without the Prometheus Operator (no ServiceMonitor to read
    // it) no Service is desired, so it is pruned.
    const formerService = {
      apiVersion: "v1",
      kind: "Service",
      metadata: { name: MODEL, namespace: t.namespace, labels: formerAuth.metadata.labels },
      spec: { type: "ClusterIP", selector: { app: MODEL }, ports: [{ name: "http", port: 8080 }] },
    };
    await kubectlOk(["apply", "-f", "-"], JSON.stringify(formerService));
    const result = await reconcile();
    expect(await t.gone("service", MODEL)).toBe(true);

    expect(await children()).toEqual(["Deployment/ocr-rec", "ScaledObject/ocr-rec"]);
    // The namespace's one TriggerAuthentication, which every model's ScaledObject refers to.
    const auth = await getJson(t.namespace, "triggerauthentication.keda.sh", TRIGGER_AUTHENTICATION);
    expect(auth).toMatchObject(namespaceTriggerAuthentication(t.namespace, plainSettings));
    // The live children carry every desired field (KEDA's real CRD schema accepted the ScaledObject,
    // strict field validation refused nothing) and are owned by the model.
    const im = await model();
    for (const desired of desiredChildren(im, plainSettings)) {
      const resource = `${desired.kind!.toLowerCase()}${desired.apiVersion!.startsWith("keda.sh") ? ".keda.sh" : ""}`;
      const live = await getJson(t.namespace, resource, desired.metadata!.name!);
      expect(live).toMatchObject(desired);
      expect(live.metadata.annotations[DESIRED_HASH]).toMatch(/^[0-9a-f]{16}$/);
      expect(live.metadata.ownerReferences).toEqual([
        expect.objectContaining({
          kind: "InferenceModel",
          name: MODEL,
          uid: im.metadata.uid,
          controller: true,
        }),
      ]);
    }
    expect(im.metadata.finalizers).toEqual(["turnpike.dev/cleanup"]);

    const live = await rabbitQueue(queue);
    expect(live?.durable).toBe(true);
    expect(live?.arguments).toEqual({
      "x-queue-type": "quorum",
      "x-max-length": 10000,
      "x-overflow": "reject-publish",
      "x-message-ttl": 600_000,
      "x-delivery-limit": 3,
      "x-dead-letter-exchange": `turnpike.${t.namespace}.dlx`,
      "x-dead-letter-strategy": "at-least-once",
    });
    expect(await rabbitQueue(names(t.namespace).deadLetterQueue)).toBeDefined();
    expect(await rabbitQueue(names(t.namespace).resultsQueue)).toBeDefined();
    expect(await rabbitQueue(names(t.namespace).resultBatchQueue)).toBeDefined();

    expect(im.status).toMatchObject({
      observedGeneration: 1,
      replicas: 0,
      readyReplicas: 0,
      selector:
        "app.kubernetes.io/component=worker,turnpike.dev/owner=ocr-rec,turnpike.dev/owner-kind=inferencemodel",
      queue: { name: queue, depth: 0, deadLetterDepth: 0 },
      endpoint: "/v2/models/ocr-rec/infer",
    });
    expect(await condition("Ready")).toMatchObject({ status: "False", reason: "NoReplicasAvailable" });
    expect(await condition("Progressing")).toMatchObject({ status: "True", reason: "RollingOut" });
    expect(await degradedLine()).toBe("False Reconciled: ");
    // Rolling out: look again soon. The runtime config was asked to re-render for the new spec.
    expect(result).toEqual({ requeueAfterMs: 5000 });
    await t.controller.idle();
    expect(t.renders).toContain(t.namespace);
  });

  it("becomes Ready once a replica is available, and `kubectl wait` sees it", async () => {
    await markDeploymentAvailable(t.namespace, MODEL, 1);
    expect(await reconcile()).toBeUndefined();
    expect(await condition("Ready")).toMatchObject({
      status: "True",
      reason: "ReplicasAvailable",
      observedGeneration: 1,
    });
    expect(await condition("Progressing")).toMatchObject({ status: "False", reason: "RolloutComplete" });
    expect((await model()).status).toMatchObject({ replicas: 1, readyReplicas: 1 });
    await kubectlOk([
      "wait",
      "--for=condition=Ready",
      `inferencemodel/${MODEL}`,
      "-n",
      t.namespace,
      "--timeout=5s",
    ]);
  });

  it("reports the queue depth (ready and unacknowledged) from the management API", async () => {
    await publishTo(queue, 3);
    const depth = await eventually(async () => {
      await reconcile();
      const d = (await model()).status.queue.depth;
      return d === 3 ? d : undefined;
    });
    expect(depth).toBe(3);
    await kubectlOk(["get", "inferencemodel", MODEL, "-n", t.namespace]); // printer columns render
    // Purge, and let the status settle back to an empty queue.
    const channel = await t.controller.ctx.amqpChannel();
    await channel.purgeQueue(queue);
    await eventually(async () => {
      await reconcile();
      return (await model()).status.queue.depth === 0 ? true : undefined;
    });
  });

  it("reports the depth of the namespace's dead-letter queue, where rejected tasks land", async () => {
    const deadLetters = names(t.namespace).deadLetterQueue;
    expect((await model()).status.queue.deadLetterDepth).toBe(0);
    await publishTo(queue, 2);
    await rejectFrom(queue, 2);
    await eventually(async () => {
      await reconcile();
      return (await model()).status.queue.deadLetterDepth === 2 ? true : undefined;
    });
    // The fanout also copied them to the collector's dead-task queue; empty both again.
    const channel = await t.controller.ctx.amqpChannel();
    await channel.purgeQueue(deadLetters);
    await channel.purgeQueue(names(t.namespace).deadTaskQueue);
    await eventually(async () => {
      await reconcile();
      return (await model()).status.queue.deadLetterDepth === 0 ? true : undefined;
    });
  });

  it("makes zero writes when nothing changed", async () => {
    const mark = auditMark();
    expect(await reconcile()).toBeUndefined();
    expect(await reconcile()).toBeUndefined();
    expect(t.writesInNamespace(mark)).toEqual([]);
  });

  it("skips declaring a queue the listing shows unchanged, and declares one deleted behind its back again", async () => {
    const args = (await rabbitQueue(queue))!.arguments;
    expect(await t.controller.ctx.queues.needsDeclaration(t.namespace, queue, args)).toBe(false);
    expect(
      await t.controller.ctx.queues.needsDeclaration(t.namespace, queue, { ...args, "x-max-length": 1 }),
    ).toBe(true);
    await deleteRabbitQueue(queue);
    // Once a listing newer than the deletion is taken, the next reconcile declares it again.
    await eventually(async () => {
      await reconcile();
      return (await rabbitQueue(queue)) ? true : undefined;
    });
    expect((await rabbitQueue(queue))?.arguments).toEqual(args);
  });

  it("applies a spec change only to the children it changes, labelled with the new generation", async () => {
    const rendersBefore = t.renders.length;
    await patchModel({ spec: { scaling: { maxReplicas: 12 }, batching: { maxDelayMs: 2500 } } });
    const mark = auditMark();
    await reconcile();
    const so = await getJson(t.namespace, "scaledobject.keda.sh", MODEL);
    expect(so.spec.maxReplicaCount).toBe(12);
    const deployment = await getJson(t.namespace, "deployment", MODEL);
    expect(deployment.spec.template.spec.terminationGracePeriodSeconds).toBe(63);
    for (const child of [so, deployment]) {
      expect(child.metadata.labels["turnpike.dev/owner-generation"]).toBe("2");
    }
    expect((await model()).status.observedGeneration).toBe(2);
    const writes = t
      .writesInNamespace(mark)
      .map((w) => `${w.verb} ${w.resource}/${w.name}${w.subresource ? "/" + w.subresource : ""}`);
    // Both children were created (POST) by the first reconcile: before its first apply, each has
    // the create's fields handed over to the apply (one managedFields patch, once per child).
    expect(writes.sort()).toEqual(
      [
        "patch deployments/ocr-rec",
        "patch deployments/ocr-rec",
        "patch scaledobjects/ocr-rec",
        "patch scaledobjects/ocr-rec",
        "patch inferencemodels/ocr-rec/status",
      ].sort(),
    );
    // So the operator's fields have one owner, the apply, which prunes what it no longer sends.
    for (const resource of ["scaledobject.keda.sh", "deployment"]) {
      const live = JSON.parse(
        await kubectlOk(["get", resource, MODEL, "-n", t.namespace, "-o", "json", "--show-managed-fields"]),
      ) as { metadata: { managedFields: { manager: string; operation: string }[] } };
      const own = live.metadata.managedFields.filter((f) => f.manager === "pepr");
      expect(own.map((f) => f.operation)).toEqual(["Apply"]);
    }
    await t.controller.idle();
    expect(t.renders.length).toBeGreaterThan(rendersBefore);
  });

  it("adds a PodDisruptionBudget at minReplicas 2 and prunes it at 1", async () => {
    await patchModel({ spec: { scaling: { minReplicas: 2 } } });
    await reconcile();
    expect(await children()).toContain("PodDisruptionBudget/ocr-rec");
    expect((await getJson(t.namespace, "deployment", MODEL)).spec.replicas).toBe(2);
    const pdb = await getJson(t.namespace, "poddisruptionbudget", MODEL);
    expect(pdb.spec).toMatchObject({ maxUnavailable: 1, unhealthyPodEvictionPolicy: "AlwaysAllow" });

    await patchModel({ spec: { scaling: { minReplicas: 1 } } });
    await reconcile();
    expect(await children()).not.toContain("PodDisruptionBudget/ocr-rec");
    expect((await getJson(t.namespace, "deployment", MODEL)).spec.replicas).toBe(1);
  });

  it("copies spec.replicas written through the scale subresource to the Deployment", async () => {
    await kubectlOk(["scale", `inferencemodel/${MODEL}`, "-n", t.namespace, "--replicas=3"]);
    await reconcile();
    expect((await getJson(t.namespace, "deployment", MODEL)).spec.replicas).toBe(3);
    const scale = JSON.parse(
      await kubectlOk([
        "get",
        "--raw",
        `/apis/turnpike.dev/v1alpha1/namespaces/${t.namespace}/inferencemodels/${MODEL}/scale`,
      ]),
    );
    expect(scale.status.selector).toBe(
      "app.kubernetes.io/component=worker,turnpike.dev/owner=ocr-rec,turnpike.dev/owner-kind=inferencemodel",
    );
    expect(scale.spec.replicas).toBe(3);
    await kubectlOk(["scale", `inferencemodel/${MODEL}`, "-n", t.namespace, "--replicas=1"]);
    await reconcile();
    await markDeploymentAvailable(t.namespace, MODEL, 1);
    await reconcile();
    expect(await children()).not.toContain("PodDisruptionBudget/ocr-rec");
  });

  it("turns a changed queue argument into Degraded with a readable message and one Warning Event", async () => {
    await patchModel({ spec: { queue: { maxLength: 20000 } } });
    await reconcile();
    const degraded = await condition("Degraded");
    expect(degraded).toMatchObject({ status: "True", reason: "QueueArgumentsChanged" });
    expect(degraded.message).toContain(
      `RabbitMQ cannot change the arguments of the existing quorum queue ${queue} in place: ` +
        "x-max-length is 10000 on the queue, but spec.queue.maxLength asks for 20000",
    );
    expect(degraded.message).toContain("rabbitmqadmin delete queue");
    expect(await condition("Ready")).toMatchObject({ status: "False", reason: "QueueArgumentsChanged" });
    expect((await rabbitQueue(queue))?.arguments["x-max-length"]).toBe(10000);
    const events = await warnings();
    expect(events.map((e) => e.reason)).toEqual(["QueueArgumentsChanged"]);
    expect(events[0]!.message).toContain("spec.queue.maxLength asks for 20000");

    // Still Degraded on the next resync, without another write (no Event bump either).
    const mark = auditMark();
    await reconcile();
    expect(t.writesInNamespace(mark)).toEqual([]);

    // Setting the spec back recovers.
    await patchModel({ spec: { queue: { maxLength: 10000 } } });
    await reconcile();
    expect(await degradedLine()).toBe("False Reconciled: ");
    expect(await condition("Ready")).toMatchObject({ status: "True" });
  });

  it("classifies a real PRECONDITION_FAILED from the broker as permanent, and the channel recovers", async () => {
    const policy = { maxLength: 10_000, messageTtlSeconds: 60, deliveryLimit: 3, deadLetter: true };
    const error = await declareModelTopology(t.controller.ctx, t.namespace, MODEL, policy).catch((e) => e);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.reason).toBe("QueueArgumentsChanged");
    expect(error.message).toContain("x-message-ttl");
    expect(isRetryable(error)).toBe(false);
    // The broker closed the channel; the next declaration gets a fresh one.
    const info = await ensureModelQueue(t.controller.ctx, t.namespace, MODEL, {
      ...policy,
      messageTtlSeconds: 600,
    });
    expect(info.name).toBe(queue);
  });

  it("treats an unreachable broker as transient", async () => {
    const down = new Controller({
      env: loadOperatorEnv({
        TURNPIKE_AMQP_URL: "amqp://turnpike:turnpike@127.0.0.1:1",
        TURNPIKE_RABBIT_MANAGEMENT_URL: "http://turnpike:turnpike@127.0.0.1:1",
      }),
      settings: plainSettings,
      kinds: [],
      renderRuntimeConfig: async () => undefined,
    });
    try {
      const policy = { maxLength: 10_000, messageTtlSeconds: 600, deliveryLimit: 3, deadLetter: true };
      const viaApi = await ensureModelQueue(down.ctx, t.namespace, MODEL, policy).catch((e) => e);
      expect(viaApi).toBeInstanceOf(TransientError);
      expect(isRetryable(viaApi)).toBe(true);
      const viaAmqp = await declareModelTopology(down.ctx, t.namespace, MODEL, policy).catch((e) => e);
      expect(viaAmqp).toBeInstanceOf(TransientError);
      expect(isRetryable(viaAmqp)).toBe(true);
    } finally {
      await down.stop();
    }
  });

  it("records a failure the work queue gave up on as Degraded, and recovers on the next reconcile", async () => {
    await inferenceModelRegistration.onGiveUp(
      t.controller.ctx,
      t.namespace,
      MODEL,
      new TransientError("broker down"),
    );
    expect(await condition("Degraded")).toMatchObject({
      status: "True",
      reason: "ReconcileFailed",
      message: "broker down",
    });
    expect((await warnings()).map((e) => e.reason)).toContain("ReconcileFailed");
    await reconcile();
    expect(await degradedLine()).toBe("False Reconciled: ");
    expect(await condition("Ready")).toMatchObject({ status: "True" });
  });

  it("on deletion stops the workers, deletes the queue with what it holds, then lets the object go", async () => {
    await publishTo(queue, 2);
    await kubectlOk(["delete", "inferencemodel", MODEL, "-n", t.namespace, "--wait=false"]);
    expect((await model()).metadata.deletionTimestamp).toBeDefined();
    await reconcile();
    expect(await rabbitQueue(queue)).toBeUndefined();
    expect(await t.gone("inferencemodel", MODEL)).toBe(true);
    // The finalizer stopped the workers itself (there is no garbage collector here).
    expect(await children()).toEqual([]);
    expect((await warnings()).map((e) => e.reason)).toContain("QueueDeletedWithMessages");
    // The shared dead-letter and results queues stay for the namespace's other models.
    expect(await rabbitQueue(names(t.namespace).deadLetterQueue)).toBeDefined();
    // A reconcile of a model that is gone does nothing.
    expect(await reconcile()).toBeUndefined();
  });
});

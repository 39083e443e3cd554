/**
 * InferenceModel lifecycle against the real kube-apiserver and RabbitMQ: scale to zero, queue
 * retention on deletion, waiting for consumers before deleting a queue, and a downloaded model whose
 * workers cannot start, driven through the Controller's work queue. No controller-manager runs here: tests
 * write Deployment status themselves and never rely on garbage collection.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { names } from "../../runtime/shared/contracts/index.js";
import { kubectlOk, patchStatus } from "../harness/kube.js";
import * as env from "./helpers/im-env.js";
import { plainSettings, sampleModel } from "./helpers/im-fixtures.js";

let t: env.ModelTestEnv;

const deleteModel = (name: string) =>
  kubectlOk(["delete", "inferencemodel", name, "-n", t.namespace, "--wait=false"]);

beforeAll(async () => {
  t = await env.modelTestEnv("im-life", plainSettings);
});

afterAll(async () => {
  for (const name of ["ocr-det", "ocr-drain"])
    await env.deleteRabbitQueue(names(t.namespace).modelQueue(name));
  await t?.cleanup();
});

describe("InferenceModel lifecycle", () => {
  it("is Ready at zero replicas, and keeps its queue and messages on deletion with retainOnDelete", async () => {
    const name = "ocr-det";
    const im = sampleModel("inference-model-ocr-det-scale-to-zero.yaml");
    im.spec!.queue = { ...im.spec!.queue, retainOnDelete: true };
    await t.applyModel(im);
    await t.reconcile(name);
    expect((await env.getJson(t.namespace, "deployment", name)).spec.replicas).toBe(0);
    expect((await env.getJson(t.namespace, "scaledobject.keda.sh", name)).spec.minReplicaCount).toBe(0);
    await env.markDeploymentAvailable(t.namespace, name, 0);
    expect(await t.reconcile(name)).toBeUndefined();
    expect(await t.condition(name, "Ready")).toMatchObject({ status: "True", reason: "ScaledToZero" });
    expect((await t.model(name)).status).toMatchObject({ replicas: 0, readyReplicas: 0 });

    const queue = names(t.namespace).modelQueue(name);
    await env.publishTo(queue, 1);
    await deleteModel(name);
    expect(await t.reconcile(name)).toBeUndefined();
    expect(await t.gone("inferencemodel", name)).toBe(true);
    const kept = await env.eventually(async () => {
      const q = await env.rabbitQueue(queue);
      return q?.messages === 1 ? q : undefined;
    });
    expect(kept.arguments["x-max-length"]).toBe(1000);
  });

  it("waits for consumers to leave before deleting the queue", async () => {
    const name = "ocr-drain";
    const im = sampleModel("inference-model-ocr-cpu.yaml");
    im.metadata!.name = name;
    await t.applyModel(im);
    await t.reconcile(name);
    const queue = names(t.namespace).modelQueue(name);

    // A worker that is still consuming (e.g. a pod in its grace period).
    const channel = await t.controller.ctx.amqpChannel();
    const { consumerTag } = await channel.consume(queue, () => undefined);
    await env.eventually(async () => ((await env.rabbitQueue(queue))?.consumers === 1 ? true : undefined));

    await deleteModel(name);
    expect(await t.reconcile(name)).toEqual({ requeueAfterMs: 2000 });
    expect(await env.rabbitQueue(queue)).toBeDefined();
    expect((await t.model(name)).metadata.finalizers).toEqual(["turnpike.dev/cleanup"]);
    // The workers were stopped first (there is no garbage collector here to do it later).
    expect(await t.gone("deployment", name)).toBe(true);
    expect(await t.gone("scaledobject.keda.sh", name)).toBe(true);

    await channel.cancel(consumerTag);
    await env.eventually(async () => ((await t.reconcile(name)) === undefined ? true : undefined));
    expect(await env.rabbitQueue(queue)).toBeUndefined();
    expect(await t.gone("inferencemodel", name)).toBe(true);
  });

  it("an s3:// model gets workers, and is Degraded with the reason they exit with", async () => {
    const name = "ocr-s3";
    const im = sampleModel("inference-model-ocr-cpu.yaml");
    im.metadata!.name = name;
    im.spec!.model = {
      ...im.spec!.model,
      uri: "s3://models/ocr/rec.onnx",
      sha256: "ab".repeat(32),
      s3: {
        endpoint: "http://minio.storage.svc:9000",
        region: "eu-west-1",
        secretRef: { name: "s3-reader" },
      },
    };
    im.spec!.scaling = { ...im.spec!.scaling, minReplicas: 1 };
    await t.applyModel(im);
    await t.reconcile(name);
    const pod = (await env.getJson(t.namespace, "deployment", name)).spec.template;
    expect(pod.spec.volumes).toContainEqual({ name: "model", emptyDir: {} });

    // Play the ReplicaSet controller and the kubelet: a worker pod whose download did not match.
    const message =
      "model uri s3://models/ocr/rec.onnx: downloaded 3 bytes with sha256 cd..., but spec.model.sha256 is ab...";
    const manifest = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: `${name}-abc12`, namespace: t.namespace, labels: pod.metadata.labels },
      spec: { containers: [{ name: "worker", image: "turnpike-runtime" }] },
    };
    await kubectlOk(["apply", "-f", "-"], JSON.stringify(manifest));
    await patchStatus(t.namespace, "pod", manifest.metadata.name, {
      phase: "Running",
      containerStatuses: [
        {
          name: "worker",
          ready: false,
          restartCount: 3,
          image: "turnpike-runtime",
          imageID: "",
          state: { waiting: { reason: "CrashLoopBackOff" } },
          lastState: {
            terminated: {
              exitCode: 1,
              reason: "Error",
              message: `ModelChecksumMismatch: ${message}`,
              finishedAt: new Date().toISOString(),
            },
          },
        },
      ],
    });
    await env.markDeploymentAvailable(t.namespace, name, 0);
    await t.reconcile(name);
    expect(await t.condition(name, "Degraded")).toMatchObject({
      status: "True",
      reason: "ModelChecksumMismatch",
      message,
    });
    expect(await t.condition(name, "Ready")).toMatchObject({ status: "False" });
    expect((await t.warnings(name)).map((e) => e.reason)).toContain("ModelChecksumMismatch");

    await kubectlOk(["delete", "pod", manifest.metadata.name, "-n", t.namespace, "--wait=false"]);
    await deleteModel(name);
    await env.deleteRabbitQueue(names(t.namespace).modelQueue(name));
  });
});

/**
 * Pipeline reconciler against the real apiserver: Ready only when every referenced InferenceModel
 * is Ready, a clear condition naming missing models otherwise (never a crash), routes in the
 * runtime config only when they can run. The InferenceModels' status is written by the test
 * (playing their reconciler), so this test depends on nothing but the Pipeline code.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { auditMark, kubectlOk, repoRoot } from "../harness/kube.js";
import { controllerEnv, type ControllerEnv } from "./helpers/controller-env.js";
import { conditionOf, getJson } from "./helpers/operator-process.js";

let t: ControllerEnv;
const MODELS = ["ocr-rec", "ocr-rec-gpu"];

beforeAll(async () => {
  t = await controllerEnv("pipeline");
  // The variant with a shadow: it references a second model, as pipelines with shadows do.
  await t.kubectl("apply", "-f", join(repoRoot, "samples/shadow/pipeline-ocr-shadow.yaml"));
  await t.reconcile("Pipeline", "ocr");
});

afterAll(async () => {
  await t?.cleanup();
});

const pipeline = () => getJson(t.namespace, "pipeline", "ocr");

async function runtimeConfig() {
  const configMap = await getJson(t.namespace, "configmap", "turnpike-runtime");
  return configMap ? JSON.parse(configMap.data[RUNTIME_CONFIG_KEY]) : undefined;
}

/** Writes an InferenceModel's Ready condition as its reconciler would. */
async function setModelReady(name: string, status: "True" | "False") {
  const im = await getJson(t.namespace, "inferencemodel", name);
  const patch = {
    status: {
      observedGeneration: im.metadata.generation,
      conditions: [
        {
          type: "Ready",
          status,
          reason: status === "True" ? "RolloutComplete" : "NoReplicasAvailable",
          message: status === "True" ? "1 of 1 replicas available" : "0 of 1 replicas available",
          lastTransitionTime: new Date().toISOString().replace(/\.\d{3}Z$/, "Z"),
          observedGeneration: im.metadata.generation,
        },
      ],
    },
  };
  await t.kubectl(
    "patch",
    "inferencemodel",
    name,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify(patch),
  );
}

describe("Pipeline", () => {
  it("names every missing model in a Degraded condition and status.missingModels", async () => {
    const ocr = await pipeline();
    expect(ocr.status).toMatchObject({
      observedGeneration: 1,
      steps: 2,
      missingModels: MODELS,
      endpoint: "/v2/models/ocr/infer",
    });
    const message = `InferenceModels ocr-rec, ocr-rec-gpu not found in namespace ${t.namespace}`;
    expect(conditionOf(ocr)).toMatchObject({ status: "False", reason: "ModelNotFound", message });
    expect(conditionOf(ocr, "Degraded")).toMatchObject({ status: "True", reason: "ModelNotFound", message });
    const events = JSON.parse(await t.kubectl("get", "events", "-o", "json")).items;
    expect(events).toEqual([expect.objectContaining({ type: "Warning", reason: "ModelNotFound", message })]);
    // A pipeline that cannot run is not routed.
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });

  it("waits for models that exist but are not Ready", async () => {
    for (const file of ["inference-model-ocr-cpu", "inference-model-ocr-gpu"]) {
      await t.kubectl("apply", "-f", join(repoRoot, `samples/${file}.yaml`));
    }
    await setModelReady("ocr-rec", "False");
    // What the InferenceModel events do in the operator: re-render the namespace's config.
    t.controller.ctx.touchRuntimeConfig(t.namespace);
    await t.reconcile("Pipeline", "ocr");
    const ocr = await pipeline();
    expect(ocr.status.missingModels).toBeUndefined();
    expect(conditionOf(ocr)).toMatchObject({
      status: "False",
      reason: "ModelsNotReady",
      message:
        "waiting for InferenceModels to become Ready: ocr-rec (NoReplicasAvailable: 0 of 1 replicas " +
        "available), ocr-rec-gpu (not reconciled yet)",
    });
    expect(conditionOf(ocr, "Progressing")).toMatchObject({ status: "True" });
    expect(conditionOf(ocr, "Degraded")).toMatchObject({ status: "False" });
    // The models exist, so requests can already queue for them.
    const config = await runtimeConfig();
    expect(config.models.map((m: { name: string }) => m.name)).toEqual(MODELS);
    expect(config.pipelines.map((p: { name: string }) => p.name)).toEqual(["ocr"]);
  });

  it("is Ready once every referenced model is Ready, and `kubectl wait` agrees", async () => {
    for (const name of MODELS) await setModelReady(name, "True");
    await t.reconcile("Pipeline", "ocr");
    expect(conditionOf(await pipeline())).toMatchObject({
      status: "True",
      message:
        "all 2 referenced InferenceModels are Ready: ocr-rec, ocr-rec-gpu; note: the shadow to " +
        "ocr-rec-gpu is not run yet (requests are unaffected)",
    });
    await t.kubectl("wait", "--for=condition=Ready", "pipelines.turnpike.dev/ocr", "--timeout=5s");
    const steps = (await runtimeConfig()).pipelines[0].steps;
    expect(steps.map((s: { name: string }) => s.name)).toEqual(["line", "recognize"]);
  });

  it("makes no write when nothing changed", async () => {
    const mark = auditMark();
    await t.reconcile("Pipeline", "ocr");
    t.controller.ctx.touchRuntimeConfig(t.namespace);
    await t.controller.idle();
    expect(t.writesInNamespace(mark)).toEqual([]);
  });

  it("turns not Ready when a referenced model does", async () => {
    await setModelReady("ocr-rec", "False");
    await t.reconcile("Pipeline", "ocr");
    expect(conditionOf(await pipeline())).toMatchObject({ status: "False", reason: "ModelsNotReady" });
    await setModelReady("ocr-rec", "True");
    await t.reconcile("Pipeline", "ocr");
    expect(conditionOf(await pipeline())).toMatchObject({ status: "True" });
  });

  it("reports a broken reference after a spec change, and drops the route", async () => {
    const patch = [{ op: "replace", path: "/spec/steps/1/model", value: "ocr-rec-v2" }];
    await t.kubectl("patch", "pipeline", "ocr", "--type=json", "-p", JSON.stringify(patch));
    await t.reconcile("Pipeline", "ocr");
    const ocr = await pipeline();
    expect(ocr.status).toMatchObject({ observedGeneration: 2, missingModels: ["ocr-rec-v2"] });
    expect(conditionOf(ocr)).toMatchObject({
      status: "False",
      reason: "ModelNotFound",
      observedGeneration: 2,
      message: `InferenceModel ocr-rec-v2 not found in namespace ${t.namespace}`,
    });
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });

  it("reports a deleted shadow model, and keeps the route without the shadow", async () => {
    const patch = [{ op: "replace", path: "/spec/steps/1/model", value: "ocr-rec" }];
    await t.kubectl("patch", "pipeline", "ocr", "--type=json", "-p", JSON.stringify(patch));
    await t.kubectl("delete", "inferencemodel", "ocr-rec-gpu");
    t.controller.ctx.touchRuntimeConfig(t.namespace);
    await t.reconcile("Pipeline", "ocr");
    const ocr = await pipeline();
    expect(ocr.status.missingModels).toEqual(["ocr-rec-gpu"]);
    expect(conditionOf(ocr)).toMatchObject({ status: "False", reason: "ModelNotFound" });
    const config = await runtimeConfig();
    expect(config.pipelines).toHaveLength(1);
    expect(config.pipelines[0].shadow).toBeUndefined();
  });

  it("reports a pipeline this runtime cannot run as NotRunnable, and does not route it", async () => {
    // Full-page OCR: a DAG step (crop reads the page and the detection map) and a processor this
    // build lacks. Run as a chain, crop would get the wrong tensors.
    const page = {
      apiVersion: "turnpike.dev/v1alpha1",
      kind: "Pipeline",
      metadata: { name: "page" },
      spec: {
        steps: [
          { name: "page", processor: "image-to-tensor" },
          { name: "detect", model: "ocr-rec" },
          { name: "crop", processor: "detect-crop", dependsOn: ["page", "detect"] },
          { name: "recognize", model: "ocr-rec" },
        ],
      },
    };
    await kubectlOk(["apply", "-f", "-", "-n", t.namespace], JSON.stringify(page));
    await t.reconcile("Pipeline", "page");
    const message =
      "this runtime cannot run the pipeline as specified: step crop reads page + detect, not step " +
      "detect (DAG steps are not run yet; every step must consume the one before it); step crop: " +
      "processor detect-crop is not built into this runtime";
    const observed = await getJson(t.namespace, "pipeline", "page");
    expect(conditionOf(observed)).toMatchObject({ status: "False", reason: "NotRunnable", message });
    expect(conditionOf(observed, "Degraded")).toMatchObject({ status: "True", reason: "NotRunnable" });
    t.controller.ctx.touchRuntimeConfig(t.namespace);
    await t.controller.idle();
    expect((await runtimeConfig()).pipelines.map((p: { name: string }) => p.name)).toEqual(["ocr"]);
    await t.kubectl("delete", "pipeline", "page");
  });

  it("leaves the runtime config when deleted", async () => {
    await t.kubectl("delete", "pipeline", "ocr");
    await t.reconcile("Pipeline", "ocr");
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });
});

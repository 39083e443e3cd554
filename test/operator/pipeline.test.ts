/**
 * Pipeline reconciler against the real apiserver: Ready only when every referenced InferenceModel
 * is Ready, a clear condition naming missing models otherwise (never a crash), routes in the
 * runtime config only when they can run. The InferenceModels' status is written by the test
 * (playing their reconciler), so this test depends on nothing but the Pipeline code.
 */
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RUNTIME_CONFIG_KEY } from "../../runtime/shared/runtime-config.js";
import { auditMark, repoRoot } from "../harness/kube.js";
import { controllerEnv, type ControllerEnv } from "./helpers/controller-env.js";
import { conditionOf, getJson } from "./helpers/operator-process.js";

let t: ControllerEnv;
const MODELS = ["ocr-det", "ocr-rec", "ocr-rec-gpu"];

beforeAll(async () => {
  t = await controllerEnv("pipeline");
  await t.kubectl("apply", "-f", join(repoRoot, "samples/pipeline-ocr.yaml"));
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
      steps: 5,
      missingModels: MODELS,
      endpoint: "/v2/models/ocr/infer",
    });
    const message = `InferenceModels ocr-det, ocr-rec, ocr-rec-gpu not found in namespace ${t.namespace}`;
    expect(conditionOf(ocr)).toMatchObject({ status: "False", reason: "ModelNotFound", message });
    expect(conditionOf(ocr, "Degraded")).toMatchObject({ status: "True", reason: "ModelNotFound", message });
    const events = JSON.parse(await t.kubectl("get", "events", "-o", "json")).items;
    expect(events).toEqual([expect.objectContaining({ type: "Warning", reason: "ModelNotFound", message })]);
    // A pipeline that cannot run is not routed.
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });

  it("waits for models that exist but are not Ready", async () => {
    for (const file of [
      "inference-model-ocr-cpu",
      "inference-model-ocr-det-scale-to-zero",
      "inference-model-ocr-gpu",
    ]) {
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
        "waiting for InferenceModels to become Ready: ocr-det (not reconciled yet), ocr-rec " +
        "(NoReplicasAvailable: 0 of 1 replicas available), ocr-rec-gpu (not reconciled yet)",
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
      message: "all 3 referenced InferenceModels are Ready: ocr-det, ocr-rec, ocr-rec-gpu",
    });
    await t.kubectl("wait", "--for=condition=Ready", "pipelines.turnpike.dev/ocr", "--timeout=5s");
    const steps = (await runtimeConfig()).pipelines[0].steps;
    expect(steps.map((s: { name: string }) => s.name)).toEqual([
      "page",
      "detect",
      "crop",
      "recognize",
      "text",
    ]);
  });

  it("makes no write when nothing changed", async () => {
    const mark = auditMark();
    await t.reconcile("Pipeline", "ocr");
    t.controller.ctx.touchRuntimeConfig(t.namespace);
    await t.controller.idle();
    expect(t.writesInNamespace(mark)).toEqual([]);
  });

  it("turns not Ready when a referenced model does", async () => {
    await setModelReady("ocr-det", "False");
    await t.reconcile("Pipeline", "ocr");
    expect(conditionOf(await pipeline())).toMatchObject({ status: "False", reason: "ModelsNotReady" });
    await setModelReady("ocr-det", "True");
    await t.reconcile("Pipeline", "ocr");
    expect(conditionOf(await pipeline())).toMatchObject({ status: "True" });
  });

  it("reports a broken reference after a spec change, and drops the route", async () => {
    const patch = [{ op: "replace", path: "/spec/steps/1/model", value: "ocr-det-v2" }];
    await t.kubectl("patch", "pipeline", "ocr", "--type=json", "-p", JSON.stringify(patch));
    await t.reconcile("Pipeline", "ocr");
    const ocr = await pipeline();
    expect(ocr.status).toMatchObject({ observedGeneration: 2, missingModels: ["ocr-det-v2"] });
    expect(conditionOf(ocr)).toMatchObject({
      status: "False",
      reason: "ModelNotFound",
      observedGeneration: 2,
      message: `InferenceModel ocr-det-v2 not found in namespace ${t.namespace}`,
    });
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });

  it("reports a deleted shadow model, and keeps the route without the shadow", async () => {
    const patch = [{ op: "replace", path: "/spec/steps/1/model", value: "ocr-det" }];
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

  it("leaves the runtime config when deleted", async () => {
    await t.kubectl("delete", "pipeline", "ocr");
    await t.reconcile("Pipeline", "ocr");
    expect((await runtimeConfig()).pipelines).toEqual([]);
  });
});

/** Unit tests of the Pipeline's status as a pure function of the models it references. */
import { describe, expect, it } from "vitest";
import type { InferenceModel, Pipeline } from "../../operator/api/index.js";
import { modelReadiness, observePipeline, referencedModels } from "../../operator/pipeline/desired.js";
import { samplesByKind, shadowPipeline, stored } from "./helpers/samples.js";

function ready(model: InferenceModel, status: "True" | "False" = "True", generation = 1): InferenceModel {
  const copy = stored(model, { generation });
  copy.status = {
    observedGeneration: generation,
    conditions: [
      {
        type: "Ready",
        status,
        reason: status === "True" ? "RolloutComplete" : "NoReplicasAvailable",
        message: status === "True" ? "" : "0 of 1 replicas available",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: generation,
      },
    ],
  } as never;
  return copy;
}

describe("Pipeline status", () => {
  const { models, pipelines } = samplesByKind("ocr-ns");
  const pipeline: Pipeline = stored(shadowPipeline(), { namespace: "ocr-ns", generation: 4 });
  const byName = (name: string) => models.find((m) => m.metadata?.name === name)!;

  it("is Ready in the default sample (no shadow) once its one model is, without GPUs", () => {
    const sample = stored(pipelines[0]!, { generation: 1 });
    expect(referencedModels(sample.spec!)).toEqual(["ocr-rec"]);
    const cpuOnly = models.filter((m) => m.metadata?.name !== "ocr-rec-gpu").map((m) => ready(m));
    expect(observePipeline(sample, cpuOnly).conditions[0]).toMatchObject({
      type: "Ready",
      status: "True",
      message: "all 1 referenced InferenceModel is Ready: ocr-rec",
    });
  });

  it("references step models in order, then the shadow model", () => {
    expect(referencedModels(pipeline.spec!)).toEqual(["ocr-rec", "ocr-rec-gpu"]);
  });

  it("is Ready only when every referenced model is Ready, and says the shadow is not run", () => {
    const observed = observePipeline(
      pipeline,
      models.map((m) => ready(m)),
    );
    expect(observed.conditions[0]).toEqual({
      type: "Ready",
      status: "True",
      reason: "Reconciled",
      message:
        "all 2 referenced InferenceModels are Ready: ocr-rec, ocr-rec-gpu; note: the shadow to " +
        "ocr-rec-gpu is not run yet (requests are unaffected)",
      observedGeneration: 4,
    });
    expect(observed.status).toEqual({ observedGeneration: 4, steps: 2, endpoint: "/v2/models/ocr/infer" });
  });

  it("names missing models (Degraded, ModelNotFound) and lists them in status", () => {
    const observed = observePipeline(pipeline, [ready(byName("ocr-rec"), "False")]);
    expect(observed.missingModels).toEqual(["ocr-rec-gpu"]);
    expect(observed.status.missingModels).toEqual(["ocr-rec-gpu"]);
    expect(observed.conditions).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "ModelNotFound",
        message:
          "InferenceModel ocr-rec-gpu not found in namespace ocr-ns; not Ready: " +
          "ocr-rec (NoReplicasAvailable: 0 of 1 replicas available)",
        observedGeneration: 4,
      },
      { type: "Progressing", status: "False", reason: "ModelNotFound", message: "", observedGeneration: 4 },
      {
        type: "Degraded",
        status: "True",
        reason: "ModelNotFound",
        message:
          "InferenceModel ocr-rec-gpu not found in namespace ocr-ns; not Ready: " +
          "ocr-rec (NoReplicasAvailable: 0 of 1 replicas available)",
        observedGeneration: 4,
      },
    ]);
  });

  it("waits (Progressing, ModelsNotReady) for models that exist but are not Ready", () => {
    const observed = observePipeline(pipeline, [
      ready(byName("ocr-rec"), "False"),
      stored(byName("ocr-rec-gpu")),
    ]);
    expect(observed.missingModels).toEqual([]);
    expect(observed.status.missingModels).toBeUndefined();
    expect(observed.conditions[0]).toMatchObject({
      type: "Ready",
      status: "False",
      reason: "ModelsNotReady",
      message:
        "waiting for InferenceModels to become Ready: ocr-rec (NoReplicasAvailable: 0 of 1 replicas " +
        "available), ocr-rec-gpu (not reconciled yet)",
    });
    expect(observed.conditions[1]).toMatchObject({ type: "Progressing", status: "True" });
  });

  it("is NotRunnable (Degraded) when the runtime cannot run a step, whatever the models", () => {
    const dag: Pipeline = stored(
      {
        ...pipeline,
        spec: {
          steps: [
            { name: "line", processor: "image-to-tensor" },
            { name: "recognize", model: "ocr-rec", inputFrom: "request" },
            { name: "text", processor: "ctc-decode" },
          ],
        },
      } as Pipeline,
      { generation: 4 },
    );
    const observed = observePipeline(
      dag,
      models.map((m) => ready(m)),
    );
    const message =
      "this runtime cannot run the pipeline as specified: step recognize reads request, not step " +
      "line (DAG steps are not run yet; every step must consume the one before it)";
    expect(observed.conditions[0]).toMatchObject({ status: "False", reason: "NotRunnable", message });
    expect(observed.conditions[2]).toMatchObject({ type: "Degraded", status: "True", reason: "NotRunnable" });
  });

  it("reports a name shared with an InferenceModel (NameConflict): requests would reach the model", () => {
    const clash: Pipeline = stored(pipeline, { generation: 4 });
    clash.metadata!.name = "ocr-rec";
    const observed = observePipeline(
      clash,
      models.map((m) => ready(m)),
    );
    expect(observed.conditions[0]).toMatchObject({
      status: "False",
      reason: "NameConflict",
      message:
        "InferenceModel ocr-rec has the same name: requests to /v2/models/ocr-rec reach the model, so " +
        "this Pipeline cannot be called; rename one of them",
    });
  });

  it("does not trust a Ready condition written for an older generation, or a model being deleted", () => {
    const stale = ready(byName("ocr-rec"), "True", 1);
    stale.metadata!.generation = 2;
    expect(modelReadiness(stale)).toEqual({ ready: false, why: "status describes generation 1, not 2" });
    const deleting = stored(ready(byName("ocr-rec")), { deletionTimestamp: "2026-01-02T00:00:00Z" });
    expect(modelReadiness(deleting)).toEqual({ ready: false, why: "being deleted" });
    expect(modelReadiness(ready(byName("ocr-rec")))).toEqual({ ready: true, why: "" });
  });
});

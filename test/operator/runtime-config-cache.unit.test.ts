/** InferenceModel spec.cache in the runtime config the operator renders (pure, no cluster). */
import { describe, expect, it } from "vitest";
import type { InferenceModel } from "../../operator/api/index.js";
import { Charge, Scope } from "../../operator/api/generated/inferencemodel-v1alpha1.js";
import { desiredRuntimeConfig } from "../../operator/runtime-config/desired.js";
import { parseRuntimeConfig } from "../../runtime/shared/contracts/index.js";
import { samplesByKind, stored } from "./helpers/samples.js";

const ocrRec = () => samplesByKind().models.find((m) => m.metadata!.name === "ocr-rec")!;

function renderOne(model: InferenceModel) {
  const config = parseRuntimeConfig(desiredRuntimeConfig("models", [model], [], []).config);
  return config.models[0]!;
}

function withSpec(model: InferenceModel, spec: Partial<NonNullable<InferenceModel["spec"]>>) {
  const copy = structuredClone(model);
  copy.spec = { ...copy.spec!, ...spec };
  return copy;
}

describe("spec.cache in the runtime config", () => {
  it("is absent unless the cache is enabled", () => {
    expect(renderOne(ocrRec()).cache).toBeUndefined();
    expect(
      renderOne(withSpec(ocrRec(), { cache: { enabled: false, ttlSeconds: 60 } })).cache,
    ).toBeUndefined();
  });

  it("carries the settings, with the CRD's defaults, and a generation", () => {
    const on = renderOne(withSpec(ocrRec(), { cache: { enabled: true } }));
    expect(on.cache).toEqual({
      generation: expect.stringMatching(/^[0-9a-f]{16}$/),
      ttlSeconds: 3600,
      maxEntries: 10_000,
      maxEntryBytes: 65_536,
      charge: "none",
      scope: "tenant",
    });
    const custom = renderOne(
      withSpec(ocrRec(), {
        cache: {
          enabled: true,
          ttlSeconds: 60,
          maxEntries: 5,
          maxEntryBytes: 100,
          charge: Charge.Tokens,
          scope: Scope.Model,
        },
      }),
    );
    expect(custom.cache).toMatchObject({
      ttlSeconds: 60,
      maxEntries: 5,
      maxEntryBytes: 100,
      charge: "tokens",
      scope: "model",
    });
  });

  it("changes its generation with the spec, the uid, not with spec.replicas or spec.cache", () => {
    const base = withSpec(ocrRec(), { cache: { enabled: true } });
    const generation = renderOne(base).cache!.generation;
    const same = (m: InferenceModel) => expect(renderOne(m).cache!.generation).toBe(generation);
    const differs = (m: InferenceModel) => expect(renderOne(m).cache!.generation).not.toBe(generation);

    same(structuredClone(base));
    same(withSpec(base, { replicas: 3 }));
    same(withSpec(base, { cache: { enabled: true, ttlSeconds: 5, charge: Charge.Tokens } }));
    // metadata.generation moves with every spec write (the autoscaler's too): not part of it.
    same({ ...base, metadata: { ...base.metadata, generation: 7 } });
    differs(withSpec(base, { model: { ...base.spec!.model, uri: "file:///models/rec-v2.onnx" } }));
    differs(withSpec(base, { tokens: { ...base.spec!.tokens, perRequest: 9 } }));
    differs(withSpec(base, { batching: { maxBatchSize: 1 } }));
    differs(stored(base, { uid: "00000000-0000-4000-8000-999999999999" }));
  });
});

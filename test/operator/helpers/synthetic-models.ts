/**
 * Many distinct InferenceModels, as the apiserver returns them, for sizing the runtime config
 * without creating thousands of CRs: the samples' specs, each with its own name, generation,
 * model URI and batching (so gzip sees realistic variety, not one entry repeated).
 */
import type { InferenceModel } from "../../../operator/api/index.js";
import { samplesByKind, stored } from "./samples.js";

export function syntheticModels(count: number, namespace = "models"): InferenceModel[] {
  const { models } = samplesByKind(namespace);
  return Array.from({ length: count }, (_, i) => {
    const model = structuredClone(models[i % models.length]!);
    const hash = ((i * 2654435761) >>> 0).toString(16);
    model.spec!.model.uri = `https://models.example.com/${((i * 104729) >>> 0).toString(36)}/v${i % 17}/model-${i}.onnx`;
    model.spec!.batching = { maxBatchSize: 1 + (i % 16), maxDelayMs: i % 50 };
    return stored(model, { name: `team-${(i * 7919) % 997}-model-${i}-${hash}`, generation: 1 + (i % 13) });
  });
}

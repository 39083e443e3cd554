/**
 * Structural defaulting exactly as the apiserver does it, driven by the InferenceModel CRD's own
 * schema (operator/api), so desired-state code and golden tests see the same spec the cluster
 * stores, without repeating any default here.
 */
import type { Schema } from "../api/common.schema.js";
import { inferenceModelCrd } from "../api/inference-model.schema.js";
import type { InferenceModelSpec } from "../api/index.js";

const specSchema: Schema = inferenceModelCrd.spec.versions[0]!.schema.openAPIV3Schema.properties!.spec!;

/**
 * Returns `value` with every missing property that has a schema default filled in, recursively
 * (a defaulted object gets its own children's defaults too, as in the apiserver). Pure.
 */
export function withSchemaDefaults(schema: Schema, value: unknown): unknown {
  if (Array.isArray(value)) {
    return schema.items ? value.map((item) => withSchemaDefaults(schema.items!, item)) : value;
  }
  if (value === null || typeof value !== "object" || !schema.properties) return value;
  const out: Record<string, unknown> = { ...(value as Record<string, unknown>) };
  for (const [key, child] of Object.entries(schema.properties)) {
    if (out[key] === undefined && child.default !== undefined) out[key] = structuredClone(child.default);
    if (out[key] !== undefined) out[key] = withSchemaDefaults(child, out[key]);
  }
  return out;
}

/** An InferenceModel spec with every schema default applied: the spec as the cluster stores it. */
export type DefaultedSpec = InferenceModelSpec & {
  tokens: NonNullable<InferenceModelSpec["tokens"]>;
  batching: Required<NonNullable<InferenceModelSpec["batching"]>>;
  runtime: NonNullable<InferenceModelSpec["runtime"]> &
    Required<Pick<NonNullable<InferenceModelSpec["runtime"]>, "executionProvider">>;
  scaling: Required<Omit<NonNullable<InferenceModelSpec["scaling"]>, "targetTokensPerSecond">> &
    Pick<NonNullable<InferenceModelSpec["scaling"]>, "targetTokensPerSecond">;
  queue: Required<NonNullable<InferenceModelSpec["queue"]>>;
};

/** Applies the InferenceModel schema's defaults to a spec. */
export function defaultedSpec(spec: InferenceModelSpec): DefaultedSpec {
  return withSchemaDefaults(specSchema, spec) as DefaultedSpec;
}

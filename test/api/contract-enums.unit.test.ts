/**
 * The enums in crds/*.yaml (what the apiserver accepts) and the lists the runtime validates against
 * (runtime/shared/contracts) are the same: a value one side knows and the other refuses fails here.
 * Pure: reads the committed YAML, needs no service.
 */
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { load } from "js-yaml";
import { describe, expect, it } from "vitest";

import {
  BUILTIN_PROCESSORS,
  DATATYPES,
  EXECUTION_PROVIDERS,
  MODEL_FORMATS,
  PROCESSORS,
  TASKS,
  TENANT_PRIORITIES,
  TENANT_PRIORITY,
  TENSOR_DATATYPES,
  TOKEN_MODES,
  modelConfigSchema,
  tenantConfigSchema,
} from "../../runtime/shared/contracts/index.js";
import { PROCESSORS as WORKER_PROCESSORS } from "../../runtime/worker/processors/index.js";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

interface JsonSchema {
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
}

/** The openAPIV3Schema of the CRD's (only) version. */
function crdSchema(file: string): JsonSchema {
  const crd = load(readFileSync(join(root, "crds", file), "utf8")) as {
    spec: { versions: { schema: { openAPIV3Schema: JsonSchema } }[] };
  };
  return crd.spec.versions[0]!.schema.openAPIV3Schema;
}

/** The enum at a dotted path; `[]` steps into array items. */
function enumAt(schema: JsonSchema, path: string): unknown[] {
  let node: JsonSchema | undefined = schema;
  for (const part of path.split(".")) {
    node = part === "[]" ? node?.items : node?.properties?.[part];
  }
  expect(node?.enum, `no enum at ${path}`).toBeDefined();
  return node!.enum!;
}

const model = crdSchema("inferencemodels.turnpike.dev.yaml");
const pipeline = crdSchema("pipelines.turnpike.dev.yaml");
const tenantQuota = crdSchema("tenantquotas.turnpike.dev.yaml");

describe("CRD enums and the runtime's lists agree", () => {
  it.each([
    ["InferenceModel spec.model.task", enumAt(model, "spec.model.task"), TASKS],
    ["InferenceModel spec.model.format", enumAt(model, "spec.model.format"), MODEL_FORMATS],
    [
      "InferenceModel spec.model.inputs[].datatype",
      enumAt(model, "spec.model.inputs.[].datatype"),
      TENSOR_DATATYPES,
    ],
    [
      "InferenceModel spec.model.outputs[].datatype",
      enumAt(model, "spec.model.outputs.[].datatype"),
      TENSOR_DATATYPES,
    ],
    ["InferenceModel spec.tokens.mode", enumAt(model, "spec.tokens.mode"), TOKEN_MODES],
    [
      "InferenceModel spec.runtime.executionProvider",
      enumAt(model, "spec.runtime.executionProvider"),
      EXECUTION_PROVIDERS,
    ],
    ["Pipeline spec.steps[].processor", enumAt(pipeline, "spec.steps.[].processor"), PROCESSORS],
    ["TenantQuota spec.priority", enumAt(tenantQuota, "spec.priority"), TENANT_PRIORITIES],
  ])("%s", (_field, crdEnum, runtimeList) => {
    expect([...crdEnum].sort()).toEqual([...runtimeList].sort());
  });

  it("the runtime config accepts every task, token mode and execution provider the CRD accepts", () => {
    const shape = modelConfigSchema.shape;
    expect(shape.task.unwrap().options).toEqual([...TASKS]);
    expect(shape.executionProvider.unwrap().options).toEqual([...EXECUTION_PROVIDERS]);
    for (const mode of TOKEN_MODES) {
      expect(modelConfigSchema.safeParse({ name: "m", uri: "file:///m", tokens: { mode } }).success).toBe(
        true,
      );
    }
  });

  it("every tenant priority maps to a runtime priority the runtime config accepts", () => {
    for (const priority of TENANT_PRIORITIES) {
      const value = TENANT_PRIORITY[priority];
      expect(tenantConfigSchema.safeParse({ name: "t", priority: value }).success).toBe(true);
    }
  });

  it("the worker registers exactly the built-in processors, all of them names the CRD accepts", () => {
    expect([...WORKER_PROCESSORS.keys()].sort()).toEqual([...BUILTIN_PROCESSORS].sort());
    expect(PROCESSORS).toEqual(expect.arrayContaining([...BUILTIN_PROCESSORS]));
  });

  it("the datatypes carried on the queues are ones the CRD accepts", () => {
    expect(TENSOR_DATATYPES).toEqual(expect.arrayContaining([...DATATYPES]));
  });
});

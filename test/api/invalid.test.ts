/**
 * The apiserver itself refuses invalid Turnpike objects, each with a message a user can act on.
 * Table-driven: every case is a valid base object with one mistake, and the substring the error
 * must contain (InferenceModel cases in invalid-cases.ts). Objects are checked with server-side
 * dry-run apply (schema, defaults, CEL rules, strict field validation), except transition rules,
 * which need an existing object.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createNamespace, deleteNamespace } from "../harness/kube.js";
import { apply, describeFailure, uniqueNamespace } from "./helpers.js";
import {
  inferenceModelCases,
  model,
  pipeline,
  quota,
  step,
  steps,
  withUri,
  type Case,
} from "./invalid-cases.js";

const namespace = uniqueNamespace("api-invalid");

const cases: Case[] = [
  ...inferenceModelCases,
  // TenantQuota
  {
    name: "tenant not a DNS label",
    manifest: quota({ tenant: "Acme_Corp" }),
    message: "spec.tenant in body should match '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
  },
  { name: "limits missing", manifest: quota({ limits: undefined }), message: "spec.limits: Required value" },
  {
    name: "no limit set",
    manifest: quota({ limits: {} }),
    message:
      "limits must set at least one of tokensPerMonth, tokensPerDay, tokensPerMinute, requestsPerMinute, concurrentRequests",
  },
  {
    name: "zero token limit",
    manifest: quota({ limits: { tokensPerDay: 0 } }),
    message: "spec.limits.tokensPerDay in body should be greater than or equal to 1",
  },
  {
    name: "negative concurrency",
    manifest: quota({ limits: { concurrentRequests: -5 } }),
    message: "spec.limits.concurrentRequests in body should be greater than or equal to 1",
  },
  {
    name: "per-minute tokens above the daily limit",
    manifest: quota({ limits: { tokensPerDay: 100, tokensPerMinute: 1000 } }),
    message: "limits.tokensPerMinute must not exceed limits.tokensPerDay",
  },
  {
    name: "daily tokens above the monthly limit",
    manifest: quota({ limits: { tokensPerMonth: 1000, tokensPerDay: 5000 } }),
    message: "limits.tokensPerDay must not exceed limits.tokensPerMonth",
  },
  {
    name: "zero monthly token limit",
    manifest: quota({ limits: { tokensPerMonth: 0 } }),
    message: "spec.limits.tokensPerMonth in body should be greater than or equal to 1",
  },
  {
    name: "duplicate API key names",
    manifest: quota({
      apiKeys: [
        { name: "main", secretRef: { name: "a" } },
        { name: "main", secretRef: { name: "b" } },
      ],
    }),
    message: 'spec.apiKeys: duplicate entries for key [name="main"]',
  },
  {
    name: "API key without a Secret name",
    manifest: quota({ apiKeys: [{ name: "main", secretRef: { key: "apiKey" } }] }),
    message: "spec.apiKeys[0].secretRef.name: Required value",
  },
  {
    name: "unknown priority",
    manifest: quota({ priority: "urgent" }),
    message: 'spec.priority: Unsupported value: "urgent"',
  },
  {
    name: "duplicate allowed models",
    manifest: quota({ models: ["ocr", "ocr"] }),
    message: 'spec.models: duplicate entries for key [="ocr"]',
  },
  // Pipeline
  {
    name: "no steps",
    manifest: pipeline({ steps: [] }),
    message: "spec.steps in body should have at least 1 items",
  },
  {
    name: "too many steps",
    manifest: steps(...Array.from({ length: 17 }, (_, i) => step(`s${i}`, { model: "ocr-rec" }))),
    message: "spec.steps: Too many: 17: must have at most 16 items",
  },
  {
    name: "duplicate step names",
    manifest: steps(step("a", { model: "ocr-det" }), step("a", { model: "ocr-rec" })),
    message: "step names must be unique",
  },
  {
    name: "step with model and processor",
    manifest: steps(step("a", { model: "ocr-rec", processor: "ctc-decode" })),
    message: "each step must set exactly one of model or processor",
  },
  {
    name: "step with neither model nor processor",
    manifest: steps(step("a", { model: "ocr-rec" }), step("b")),
    message: "each step must set exactly one of model or processor",
  },
  {
    name: "unknown processor",
    manifest: steps(step("a", { model: "ocr-rec" }), step("b", { processor: "resize" })),
    message: 'spec.steps[1].processor: Unsupported value: "resize"',
  },
  {
    name: "only processors",
    manifest: steps(step("a", { processor: "image-to-tensor" })),
    message: "a pipeline needs at least one model step",
  },
  {
    name: "dependsOn an unknown step",
    manifest: steps(
      step("a", { model: "ocr-rec" }),
      step("b", { processor: "ctc-decode", dependsOn: ["x"] }),
    ),
    message: "dependsOn may only name steps listed earlier in spec.steps",
  },
  {
    name: "dependsOn a later step (a cycle)",
    manifest: steps(
      step("a", { model: "ocr-rec", dependsOn: ["b"] }),
      step("b", { processor: "ctc-decode" }),
    ),
    message: "dependsOn may only name steps listed earlier in spec.steps",
  },
  {
    name: "dependsOn itself",
    manifest: steps(step("a", { model: "ocr-rec", dependsOn: ["a"] })),
    message: "dependsOn may only name steps listed earlier in spec.steps",
  },
  {
    name: "inputFrom an unknown step",
    manifest: steps(step("a", { model: "ocr-rec" }), step("b", { processor: "ctc-decode", inputFrom: "x" })),
    message: "inputFrom must be 'request' or one of the step's dependencies",
  },
  {
    name: "inputFrom an earlier step that is not a dependency",
    manifest: steps(
      step("a", { model: "ocr-det" }),
      step("b", { model: "ocr-rec", dependsOn: [] }),
      step("c", { processor: "ctc-decode", dependsOn: ["b"], inputFrom: "a" }),
    ),
    message: "inputFrom must be 'request' or one of the step's dependencies",
  },
  {
    name: "step named request",
    manifest: steps(step("request", { model: "ocr-rec" })),
    message: "'request' is reserved for the pipeline's own input",
  },
  {
    name: "parameters on a model step",
    manifest: steps(step("a", { model: "ocr-rec", parameters: { height: "48" } })),
    message: "parameters may only be set on processor steps",
  },
  {
    name: "maxOutputTokens on a processor step",
    manifest: steps(
      step("a", { model: "ocr-rec" }),
      step("b", { processor: "ctc-decode", maxOutputTokens: 5 }),
    ),
    message: "maxOutputTokens may only be set on model steps",
  },
  {
    name: "shadow of an unknown step",
    manifest: pipeline({ shadow: { step: "x", model: "ocr-rec-gpu" } }),
    message: "shadow.step must name a model step of this pipeline",
  },
  {
    name: "shadow to the same model",
    manifest: pipeline({ shadow: { step: "a", model: "ocr-rec" } }),
    message: "shadow.model must differ from the model of the step it mirrors",
  },
  {
    name: "shadow percent zero",
    manifest: pipeline({ shadow: { step: "a", model: "ocr-rec-gpu", percent: 0 } }),
    message: "spec.shadow.percent in body should be greater than or equal to 1",
  },
  {
    name: "Pipeline name with a dot",
    manifest: { ...pipeline({}), metadata: { name: "ocr.v2" } },
    message: "Pipeline names must be at most 63 characters and contain no dots",
  },
  {
    name: "Pipeline name too long",
    manifest: { ...pipeline({}), metadata: { name: "p".repeat(64) } },
    message: "Pipeline names must be at most 63 characters and contain no dots",
  },
  {
    name: "processor parameter value over 512 characters",
    manifest: steps(
      step("a", { model: "ocr-rec" }),
      step("b", { processor: "ctc-decode", parameters: { dictionary: `npm://${"x".repeat(512)}` } }),
    ),
    message: "spec.steps[1].parameters.dictionary: Too long",
  },
  {
    name: "processor parameter name over 63 characters",
    manifest: steps(
      step("a", { model: "ocr-rec" }),
      step("b", { processor: "ctc-decode", parameters: { ["k".repeat(64)]: "v" } }),
    ),
    message: "parameter names must be at most 63 characters",
  },
];

beforeAll(async () => {
  await createNamespace(namespace);
});

afterAll(async () => {
  await deleteNamespace(namespace);
});

describe("invalid objects are refused with a readable message", () => {
  it("has at least 25 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(25);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, { manifest, message }) => {
    const result = await apply(namespace, manifest, { dryRun: true });
    expect(result.code, describeFailure(result)).not.toBe(0);
    expect(result.stderr).toContain(message);
  });

  it("the base objects of the table are themselves valid", async () => {
    const dag = steps(
      step("page", { processor: "image-to-tensor" }),
      step("detect", { model: "ocr-det" }),
      step("lines", { model: "ocr-rec", dependsOn: ["page", "detect"], inputFrom: "detect" }),
      step("direction", { model: "ocr-cls", dependsOn: [], inputFrom: "request" }),
      step("text", { processor: "ctc-decode", dependsOn: ["lines", "direction"], inputFrom: "lines" }),
    );
    const valid = [model({}), quota({}), pipeline({}), dag, withUri("pvc://models/ocr/rec.onnx")];
    for (const manifest of valid) {
      const result = await apply(namespace, manifest, { dryRun: true });
      expect(result.code, describeFailure(result)).toBe(0);
    }
  });
});

describe("transition rules", () => {
  it("TenantQuota tenant is immutable", async () => {
    const created = await apply(namespace, quota({}));
    expect(created.code, describeFailure(created)).toBe(0);
    const changed = await apply(namespace, quota({ tenant: "globex" }));
    expect(changed.code).not.toBe(0);
    expect(changed.stderr).toContain("tenant is immutable; create a new TenantQuota instead");
    const unchanged = await apply(namespace, quota({ limits: { tokensPerDay: 2000 } }));
    expect(unchanged.code, describeFailure(unchanged)).toBe(0);
  });
});

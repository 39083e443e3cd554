/**
 * Golden tests of the InferenceModel's desired children: the samples rendered under plain and
 * monitored settings must match test/operator/golden/inference-model/*.yaml exactly
 * (UPDATE_GOLDEN=1 regenerates them), plus the rules behind them.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { InferenceModel } from "../../operator/api/index.js";
import { desiredChildren } from "../../operator/inference-model/desired.js";
import { namespaceTriggerAuthentication } from "../../operator/inference-model/desired-autoscaling.js";
import { TRIGGER_AUTHENTICATION } from "../../operator/inference-model/naming.js";
import { PermanentError } from "../../operator/shared/errors.js";
import { nodeFlagsOf, ROLE_NODE_FLAGS, RUNTIME_IMAGE_ENTRY } from "../../runtime/shared/node-flags.js";
import {
  expectGolden,
  monitoredSettings,
  plainSettings,
  sampleModel,
  stored,
} from "./helpers/im-fixtures.js";

type Obj = KubernetesObject & { spec?: any; metadata?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

const cpu = () => stored(sampleModel("inference-model-ocr-cpu.yaml"));
const gpu = () => stored(sampleModel("inference-model-ocr-gpu.yaml"));
const det = () => stored(sampleModel("inference-model-ocr-det-scale-to-zero.yaml"));

function withSpec(im: InferenceModel, patch: (spec: NonNullable<InferenceModel["spec"]>) => void) {
  const copy = structuredClone(im);
  patch(copy.spec!);
  return copy;
}

const kinds = (children: KubernetesObject[]) => children.map((c) => `${c.kind}/${c.metadata?.name}`);
const find = (children: KubernetesObject[], kind: string) => children.find((c) => c.kind === kind) as Obj;

describe("desiredChildren golden files", () => {
  it("CPU sample, plain settings", () => {
    const children = desiredChildren(cpu(), plainSettings);
    // No Prometheus Operator, no ServiceMonitor: no Service either (nothing else reads it).
    expect(kinds(children)).toEqual(["Deployment/ocr-rec", "ScaledObject/ocr-rec"]);
    expectGolden("inference-model/ocr-cpu", children);
  });

  it("GPU sample with Prometheus and the Prometheus Operator", () => {
    const children = desiredChildren(gpu(), monitoredSettings);
    expect(kinds(children)).toEqual([
      "Deployment/ocr-rec-gpu",
      "Service/ocr-rec-gpu",
      "ScaledObject/ocr-rec-gpu",
      "ServiceMonitor/ocr-rec-gpu",
    ]);
    expectGolden("inference-model/ocr-gpu-monitored", children);
  });

  it("scale-to-zero sample", () => {
    const children = desiredChildren(det(), plainSettings);
    expect(find(children, "Deployment").spec.replicas).toBe(0);
    expect(find(children, "ScaledObject").spec.minReplicaCount).toBe(0);
    expectGolden("inference-model/ocr-det-scale-to-zero", children);
  });

  it("two guaranteed replicas, a model on a PVC, an image override and a priority class", () => {
    const im = withSpec(cpu(), (spec) => {
      spec.scaling!.minReplicas = 2;
      spec.model.uri = "pvc://ocr-models/v4/rec.onnx";
      spec.runtime!.image = "registry.example.com/turnpike-runtime:dev";
      spec.placement = { priorityClassName: "inference-high" };
    });
    const children = desiredChildren(im, plainSettings);
    expect(kinds(children)).toContain("PodDisruptionBudget/ocr-rec");
    expectGolden("inference-model/ocr-cpu-min2-pvc", children);
  });
});

describe("desiredChildren rules", () => {
  it("adds a PodDisruptionBudget only when more than one replica runs or is guaranteed", () => {
    const pdb = (im: InferenceModel) =>
      kinds(desiredChildren(im, plainSettings)).includes("PodDisruptionBudget/" + im.metadata!.name);
    expect(pdb(cpu())).toBe(false);
    expect(pdb(det())).toBe(false);
    expect(pdb(withSpec(cpu(), (s) => (s.scaling!.minReplicas = 2)))).toBe(true);
    expect(pdb(withSpec(cpu(), (s) => (s.replicas = 3)))).toBe(true);
    expect(pdb(withSpec(cpu(), (s) => (s.replicas = 1)))).toBe(false);
  });

  it("adds the token-rate trigger only with a target and a Prometheus", () => {
    const triggers = (im: InferenceModel, settings = monitoredSettings) =>
      find(desiredChildren(im, settings), "ScaledObject").spec.triggers.map((t: { type: string }) => t.type);
    expect(triggers(gpu())).toEqual(["rabbitmq", "prometheus"]);
    expect(triggers(gpu(), plainSettings)).toEqual(["rabbitmq"]);
    expect(triggers(cpu())).toEqual(["rabbitmq"]);
    const prometheus = find(desiredChildren(gpu(), monitoredSettings), "ScaledObject").spec.triggers[1];
    expect(prometheus.metadata).toEqual({
      serverAddress: monitoredSettings.prometheusUrl,
      query: 'sum(rate(ml_tokens_processed_total{namespace="models",model="ocr-rec-gpu",role="worker"}[2m]))',
      threshold: "20000",
    });
  });

  it("counts unacknowledged messages of the model's queue and all its tenant lanes, and targets the InferenceModel", () => {
    const so = find(desiredChildren(cpu(), plainSettings), "ScaledObject");
    expect(so.spec.scaleTargetRef).toEqual({
      apiVersion: "turnpike.dev/v1alpha1",
      kind: "InferenceModel",
      name: "ocr-rec",
    });
    expect(so.spec.triggers[0].metadata).toMatchObject({
      protocol: "http",
      mode: "QueueLength",
      value: "32",
      queueName: "^turnpike\\.models\\.model\\.ocr-rec(\\.tenant\\.[a-z0-9-]+)?$",
      useRegex: "true",
      operation: "sum",
    });
    const pattern = new RegExp(so.spec.triggers[0].metadata.queueName);
    expect(pattern.test("turnpike.models.model.ocr-rec")).toBe(true);
    expect(pattern.test("turnpike.models.model.ocr-rec.tenant.acme")).toBe(true);
    expect(pattern.test("turnpike.models.model.ocr-rec-2")).toBe(false);
    expect(pattern.test("turnpike.models.model.ocr-rec-2.tenant.acme")).toBe(false);
    // The namespace's one TriggerAuthentication, not one per model.
    expect(so.spec.triggers[0].authenticationRef).toEqual({
      name: TRIGGER_AUTHENTICATION,
      kind: "TriggerAuthentication",
    });
    expect(find(desiredChildren(cpu(), plainSettings), "TriggerAuthentication")).toBeUndefined();
    const auth = namespaceTriggerAuthentication("models", plainSettings) as Obj;
    expect(auth.metadata.labels).not.toHaveProperty("turnpike.dev/owner");
    expect(auth.metadata.ownerReferences).toBeUndefined();
    expect(auth.spec.secretTargetRef).toEqual([
      { parameter: "host", name: "turnpike-runtime", key: "rabbitmq-management-url" },
    ]);
  });

  it("starts the worker through the image's entry point with the worker's node flags", () => {
    const container = find(desiredChildren(cpu(), plainSettings), "Deployment").spec.template.spec
      .containers[0];
    expect(container.command).toEqual(["node", ...ROLE_NODE_FLAGS.worker, RUNTIME_IMAGE_ENTRY]);
    expect(container.args).toEqual(["worker"]);
    expect(nodeFlagsOf(container.command)).toEqual([...ROLE_NODE_FLAGS.worker]);
    expect(nodeFlagsOf(undefined)).toEqual([]);
  });

  it("never inlines a connection URL and runs locked down", () => {
    for (const im of [cpu(), gpu(), det()]) {
      const pod = find(desiredChildren(im, monitoredSettings), "Deployment").spec.template.spec;
      const container = pod.containers[0];
      for (const env of container.env) {
        if (env.name.endsWith("_URL")) expect(env.valueFrom.secretKeyRef.name).toBe("turnpike-runtime");
        expect(JSON.stringify(env)).not.toMatch(/amqp:|redis:|postgres:/);
      }
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001 });
      expect(pod.securityContext.seccompProfile).toEqual({ type: "RuntimeDefault" });
      expect(container.securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
      });
      expect(pod.automountServiceAccountToken).toBe(false);
    }
  });

  it("keeps the pod template stable across generations (a scale never restarts pods)", () => {
    const template = (generation: number) =>
      find(desiredChildren(stored(cpu(), { generation }), plainSettings), "Deployment").spec.template;
    expect(template(7)).toEqual(template(1));
    const deployment = find(desiredChildren(stored(cpu(), { generation: 7 }), plainSettings), "Deployment");
    expect(deployment.metadata?.labels?.["turnpike.dev/owner-generation"]).toBe("7");
  });

  it("sets the grace period from the batching delay and drains before it ends", () => {
    const im = withSpec(cpu(), (s) => (s.batching!.maxDelayMs = 2500));
    const pod = find(desiredChildren(im, plainSettings), "Deployment").spec.template.spec;
    expect(pod.terminationGracePeriodSeconds).toBe(63);
    expect(pod.containers[0].env).toContainEqual({ name: "TURNPIKE_DRAIN_TIMEOUT_MS", value: "53000" });
  });

  it("gives an s3:// model an emptyDir to download into and the Secret's credentials, instead of a claim", () => {
    const sha256 = "ab".repeat(32);
    const im = withSpec(cpu(), (s) => {
      s.model.uri = "s3://models/ocr/rec.onnx";
      s.model.sha256 = sha256;
      s.model.s3 = {
        endpoint: "http://minio.storage.svc:9000",
        region: "eu-west-1",
        secretRef: { name: "s3-reader" },
      };
    });
    const pod = find(desiredChildren(im, plainSettings), "Deployment").spec.template.spec;
    expect(pod.volumes).toContainEqual({ name: "model", emptyDir: {} });
    expect(pod.volumes.filter((v: { persistentVolumeClaim?: unknown }) => v.persistentVolumeClaim)).toEqual(
      [],
    );
    const container = pod.containers[0];
    expect(container.volumeMounts).toContainEqual({ name: "model", mountPath: "/model-download" });
    const key = (key: string, optional?: boolean) => ({
      secretKeyRef: { name: "s3-reader", key, ...(optional ? { optional } : {}) },
    });
    expect(container.env).toEqual(
      expect.arrayContaining([
        { name: "TURNPIKE_MODEL_URI", value: "s3://models/ocr/rec.onnx" },
        { name: "TURNPIKE_MODEL_SHA256", value: sha256 },
        { name: "TURNPIKE_MODEL_DOWNLOAD_DIR", value: "/model-download" },
        { name: "AWS_ENDPOINT_URL", value: "http://minio.storage.svc:9000" },
        { name: "AWS_REGION", value: "eu-west-1" },
        { name: "AWS_ACCESS_KEY_ID", valueFrom: key("AWS_ACCESS_KEY_ID") },
        { name: "AWS_SECRET_ACCESS_KEY", valueFrom: key("AWS_SECRET_ACCESS_KEY") },
        { name: "AWS_SESSION_TOKEN", valueFrom: key("AWS_SESSION_TOKEN", true) },
      ]),
    );
  });

  it("gives an https:// model an emptyDir and no credentials", () => {
    const im = withSpec(cpu(), (s) => {
      s.model.uri = "https://models.example.com/rec.onnx";
      s.model.sha256 = "cd".repeat(32);
    });
    const container = find(desiredChildren(im, plainSettings), "Deployment").spec.template.spec.containers[0];
    const names = container.env.map((e: { name: string }) => e.name);
    expect(names).toContain("TURNPIKE_MODEL_SHA256");
    expect(names.filter((n: string) => n.startsWith("AWS_"))).toEqual([]);
  });

  it("refuses model sources the runtime cannot read, with a readable reason", () => {
    const gs = withSpec(cpu(), (s) => (s.model.uri = "gs://bucket/rec.onnx"));
    expect(() => desiredChildren(gs, plainSettings)).toThrow(PermanentError);
    expect(() => desiredChildren(gs, plainSettings)).toThrow(/gs sources.*pvc:\/\/<claim>\/<path>/);
    const tokenizer = withSpec(cpu(), (s) => {
      s.tokens = { mode: "tokenizer", tokenizer: { uri: "s3://models/tokenizer.json" } } as typeof s.tokens;
    });
    expect(() => desiredChildren(tokenizer, plainSettings)).toThrow(/spec.tokens.tokenizer.uri .*s3 sources/);
  });

  it("is pure: same input, same output, input untouched", () => {
    const im = gpu();
    const before = structuredClone(im);
    expect(desiredChildren(im, monitoredSettings)).toEqual(desiredChildren(im, monitoredSettings));
    expect(im).toEqual(before);
  });
});

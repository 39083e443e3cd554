/**
 * Golden tests of the InferenceModel's desired children: the samples rendered under plain and
 * monitored settings must match test/operator/golden/inference-model/*.yaml exactly
 * (UPDATE_GOLDEN=1 regenerates them), plus the rules behind them.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { InferenceModel } from "../../operator/api/index.js";
import { desiredChildren } from "../../operator/inference-model/desired.js";
import { PermanentError } from "../../operator/shared/errors.js";
import {
  expectGolden,
  monitoredSettings,
  plainSettings,
  sampleModel,
  stored,
} from "./helpers/im-fixtures.js";

type Obj = KubernetesObject & { spec?: any }; // eslint-disable-line @typescript-eslint/no-explicit-any

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
    expect(kinds(children)).toEqual([
      "Deployment/ocr-rec",
      "Service/ocr-rec",
      "TriggerAuthentication/ocr-rec-rabbitmq",
      "ScaledObject/ocr-rec",
    ]);
    expectGolden("inference-model/ocr-cpu", children);
  });

  it("GPU sample with Prometheus and the Prometheus Operator", () => {
    const children = desiredChildren(gpu(), monitoredSettings);
    expect(kinds(children)).toEqual([
      "Deployment/ocr-rec-gpu",
      "Service/ocr-rec-gpu",
      "TriggerAuthentication/ocr-rec-gpu-rabbitmq",
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
    const auth = find(desiredChildren(cpu(), plainSettings), "TriggerAuthentication");
    expect(auth.spec.secretTargetRef).toEqual([
      { parameter: "host", name: "turnpike-runtime", key: "rabbitmq-management-url" },
    ]);
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

  it("refuses model sources the runtime cannot read, with a readable reason", () => {
    const s3 = withSpec(cpu(), (s) => (s.model.uri = "s3://bucket/rec.onnx"));
    expect(() => desiredChildren(s3, plainSettings)).toThrow(PermanentError);
    expect(() => desiredChildren(s3, plainSettings)).toThrow(/s3 sources.*pvc:\/\/<claim>\/<path>/);
  });

  it("is pure: same input, same output, input untouched", () => {
    const im = gpu();
    const before = structuredClone(im);
    expect(desiredChildren(im, monitoredSettings)).toEqual(desiredChildren(im, monitoredSettings));
    expect(im).toEqual(before);
  });
});

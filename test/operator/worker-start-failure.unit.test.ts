/**
 * Why a downloaded model's workers cannot start, from their Pods' termination messages to the
 * model's Degraded condition: the pure parts (the apiserver round trip is in
 * inference-model-lifecycle.test.ts).
 */
import type { V1Deployment, V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { modelStatus } from "../../operator/inference-model/model-status.js";
import { startFailureOf } from "../../operator/inference-model/worker-pods.js";
import { parseStartFailure } from "../../runtime/shared/contracts/start-failure.js";
import { terminationMessage } from "../../runtime/shared/run-role.js";
import { ModelSourceError } from "../../runtime/worker/model-download/download-model.js";
import { sampleModel, stored } from "./helpers/im-fixtures.js";

const mismatch =
  "ModelChecksumMismatch: model uri s3://m/rec.onnx: downloaded 3 bytes with sha256 aa, but ...";

function pod(
  terminated: { message?: string; finishedAt?: string },
  where: "state" | "lastState" = "lastState",
): V1Pod {
  return {
    metadata: { name: "p" },
    status: {
      containerStatuses: [
        {
          name: "worker",
          ready: false,
          restartCount: 2,
          image: "turnpike",
          imageID: "",
          [where]: { terminated: { exitCode: 1, ...terminated } },
        },
      ],
    },
  } as V1Pod;
}

describe("the worker's termination message", () => {
  it("starts with the reason of a typed error, then the message and its causes", () => {
    const error = new ModelSourceError(
      "ModelDownloadFailed",
      "model uri https://h/m.onnx: HTTP 404 Not Found",
    );
    expect(terminationMessage(error)).toBe(
      "ModelDownloadFailed: model uri https://h/m.onnx: HTTP 404 Not Found",
    );
    const plain = new Error("loading model m", { cause: new Error("bad protobuf") });
    expect(terminationMessage(plain)).toBe("StartFailed: loading model m: bad protobuf");
    expect(parseStartFailure(terminationMessage(error))).toEqual({
      reason: "ModelDownloadFailed",
      message: "model uri https://h/m.onnx: HTTP 404 Not Found",
    });
    // Only the reasons the operator reports as they are.
    expect(parseStartFailure(terminationMessage(plain))).toBeUndefined();
  });
});

describe("startFailureOf", () => {
  it("finds the newest known failure in the worker containers' state or last state", () => {
    const older = pod({ message: "ModelDownloadFailed: HTTP 503", finishedAt: "2026-01-01T00:00:00Z" });
    const newer = pod({ message: mismatch, finishedAt: "2026-01-01T00:01:00Z" }, "state");
    expect(startFailureOf([older, newer])).toEqual({
      reason: "ModelChecksumMismatch",
      message: mismatch.slice("ModelChecksumMismatch: ".length),
    });
    expect(startFailureOf([pod({ message: "StartFailed: something else" }), pod({})])).toBeUndefined();
    expect(startFailureOf([])).toBeUndefined();
  });
});

describe("modelStatus with a start failure", () => {
  const im = stored(sampleModel("inference-model-ocr-cpu.yaml"), { namespace: "ns1", generation: 2 });
  const deployment = (available: number): V1Deployment => ({
    metadata: { generation: 1 },
    spec: { replicas: 1 } as V1Deployment["spec"],
    status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, availableReplicas: available },
  });
  const conditions = (available: number) =>
    Object.fromEntries(
      (
        modelStatus(im, {
          deployment: deployment(available),
          startFailure: { reason: "ModelChecksumMismatch", message: "digests differ" },
        }).status.conditions as { type: string; status: string; reason: string; message: string }[]
      ).map((c) => [c.type, `${c.status}/${c.reason}/${c.message}`]),
    );

  it("is Degraded with the worker's reason and message while the rollout is unfinished", () => {
    expect(conditions(0)).toMatchObject({
      Ready: expect.stringMatching(/^False\/NoReplicasAvailable/),
      Degraded: "True/ModelChecksumMismatch/digests differ",
    });
  });

  it("is Degraded but still Ready while an old replica serves and the new one cannot start", () => {
    const rolling: V1Deployment = {
      metadata: { generation: 2 },
      spec: { replicas: 1 } as V1Deployment["spec"],
      status: { observedGeneration: 2, replicas: 2, updatedReplicas: 1, availableReplicas: 1 },
    };
    const status = modelStatus(im, {
      deployment: rolling,
      startFailure: { reason: "ModelDownloadFailed", message: "HTTP 404 Not Found (NoSuchKey)" },
    }).status;
    const byType = Object.fromEntries(
      (status.conditions as { type: string; status: string; reason: string }[]).map((c) => [
        c.type,
        `${c.status}/${c.reason}`,
      ]),
    );
    expect(byType).toMatchObject({ Ready: "True/ReplicasAvailable", Degraded: "True/ModelDownloadFailed" });
  });

  it("is not Degraded by a failure of the past once replicas are available", () => {
    expect(conditions(1).Degraded).toBe("False/Reconciled/");
  });
});

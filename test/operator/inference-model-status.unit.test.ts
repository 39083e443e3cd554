/**
 * The InferenceModel's status and queue-argument comparison as pure functions: conditions for each
 * rollout state, scale to zero, permanent problems, and lastTransitionTime stability.
 */
import type { V1Deployment } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import type { InferenceModel } from "../../operator/api/index.js";
import { modelStatus, rolloutOf } from "../../operator/inference-model/model-status.js";
import { argumentDifferences } from "../../operator/inference-model/queue.js";
import { PermanentError } from "../../operator/shared/errors.js";
import { modelQueueArguments } from "../../runtime/shared/amqp.js";
import { sampleModel, stored } from "./helpers/im-fixtures.js";

const t0 = new Date("2025-01-01T00:00:00Z");
const t1 = new Date("2025-01-01T00:05:00Z");

function deployment(generation: number, status: V1Deployment["status"]): V1Deployment {
  return { metadata: { generation }, status };
}

const conditionsOf = (status: Record<string, unknown>) =>
  Object.fromEntries(
    (status.conditions as { type: string; status: string; reason: string }[]).map((c) => [
      c.type,
      `${c.status}/${c.reason}`,
    ]),
  );

describe("modelStatus", () => {
  const cpu = stored(sampleModel("inference-model-ocr-cpu.yaml"), { namespace: "ns1", generation: 4 });

  it("reports the dead-letter depth only for a model that dead-letters", () => {
    const info = (messages: number) => ({ name: "q", messages, consumers: 0, arguments: {} });
    const observed = { queue: info(1), deadLetter: info(4) };
    expect(modelStatus(cpu, observed, t0).status.queue).toMatchObject({ depth: 1, deadLetterDepth: 4 });
    const off = { ...cpu, spec: { ...cpu.spec!, queue: { ...cpu.spec!.queue, deadLetter: false } } };
    expect(modelStatus(off as InferenceModel, observed, t0).status.queue).not.toHaveProperty(
      "deadLetterDepth",
    );
  });

  it("is Ready and not Progressing once the rollout is complete", () => {
    const { status, progressing } = modelStatus(
      cpu,
      {
        deployment: deployment(2, {
          observedGeneration: 2,
          replicas: 1,
          updatedReplicas: 1,
          readyReplicas: 1,
          availableReplicas: 1,
        }),
        queue: { name: "q", messages: 7, consumers: 1, arguments: {} },
      },
      t0,
    );
    expect(progressing).toBe(false);
    expect(conditionsOf(status)).toEqual({
      Ready: "True/ReplicasAvailable",
      Progressing: "False/RolloutComplete",
      Degraded: "False/Reconciled",
    });
    expect(status).toMatchObject({
      observedGeneration: 4,
      replicas: 1,
      readyReplicas: 1,
      selector:
        "app.kubernetes.io/component=worker,turnpike.dev/owner=ocr-rec,turnpike.dev/owner-kind=inferencemodel",
      queue: { name: "turnpike.ns1.model.ocr-rec", depth: 7 },
      endpoint: "/v2/models/ocr-rec/infer",
    });
  });

  it("stays Ready while a rollout with available replicas is Progressing", () => {
    const { status, progressing } = modelStatus(
      cpu,
      {
        deployment: deployment(3, {
          observedGeneration: 3,
          replicas: 2,
          updatedReplicas: 1,
          availableReplicas: 1,
        }),
      },
      t0,
    );
    expect(progressing).toBe(true);
    expect(conditionsOf(status)).toMatchObject({
      Ready: "True/ReplicasAvailable",
      Progressing: "True/RollingOut",
    });
  });

  it("is not Ready while no replica is available yet", () => {
    const { status, progressing } = modelStatus(cpu, { deployment: deployment(1, {}) }, t0);
    expect(progressing).toBe(true);
    expect(conditionsOf(status)).toMatchObject({
      Ready: "False/NoReplicasAvailable",
      Progressing: "True/RollingOut",
    });
  });

  it("is Ready when scaled to zero on purpose", () => {
    const det = stored(sampleModel("inference-model-ocr-det-scale-to-zero.yaml"));
    const { status, progressing } = modelStatus(
      det,
      { deployment: deployment(1, { observedGeneration: 1 }) },
      t0,
    );
    expect(progressing).toBe(false);
    expect(conditionsOf(status)).toMatchObject({
      Ready: "True/ScaledToZero",
      Progressing: "False/RolloutComplete",
    });
  });

  it("reports a stuck rollout as Degraded", () => {
    const { status, progressing } = modelStatus(
      cpu,
      {
        deployment: deployment(1, {
          observedGeneration: 1,
          replicas: 1,
          updatedReplicas: 1,
          conditions: [
            {
              type: "Progressing",
              status: "False",
              reason: "ProgressDeadlineExceeded",
              message: 'ReplicaSet "ocr-rec-5d9" has timed out progressing.',
            },
          ],
        }),
      },
      t0,
    );
    expect(progressing).toBe(false);
    expect(conditionsOf(status)).toMatchObject({
      Ready: "False/NoReplicasAvailable",
      Degraded: "True/ProgressDeadlineExceeded",
    });
  });

  it("turns a permanent problem into Degraded with its reason and message", () => {
    const problem = new PermanentError("QueueArgumentsChanged", "x-max-length differs");
    const { status } = modelStatus(cpu, { problem }, t0);
    expect(conditionsOf(status)).toEqual({
      Ready: "False/QueueArgumentsChanged",
      Progressing: "False/QueueArgumentsChanged",
      Degraded: "True/QueueArgumentsChanged",
    });
  });

  it("moves lastTransitionTime only when a condition's status changes", () => {
    const ready = deployment(1, {
      observedGeneration: 1,
      replicas: 1,
      updatedReplicas: 1,
      availableReplicas: 1,
    });
    const first = modelStatus(cpu, { deployment: ready }, t0).status;
    const again = modelStatus({ ...cpu, status: first } as InferenceModel, { deployment: ready }, t1).status;
    expect(again).toEqual(first);
    const lost = modelStatus(
      { ...cpu, status: first } as InferenceModel,
      { deployment: deployment(1, {}) },
      t1,
    );
    const time = (s: Record<string, unknown>, type: string) =>
      (s.conditions as { type: string; lastTransitionTime: string }[]).find((c) => c.type === type)!
        .lastTransitionTime;
    expect(time(lost.status, "Ready")).toBe("2025-01-01T00:05:00Z");
    expect(time(lost.status, "Degraded")).toBe("2025-01-01T00:00:00Z");
  });
});

describe("rolloutOf", () => {
  it("waits for the Deployment controller to observe the new spec", () => {
    expect(rolloutOf(deployment(2, { observedGeneration: 1, availableReplicas: 1 }), 1)).toMatchObject({
      done: false,
      message: "the worker Deployment has not seen the new spec yet",
    });
  });
});

describe("argumentDifferences", () => {
  const policy = { maxLength: 10_000, messageTtlSeconds: 600, deliveryLimit: 3, deadLetter: true };

  it("finds none for the arguments the runtime declares", () => {
    expect(argumentDifferences(modelQueueArguments("ns", policy), modelQueueArguments("ns", policy))).toEqual(
      [],
    );
  });

  it("names the argument, both values and the spec field", () => {
    const current = modelQueueArguments("ns", policy);
    const desired = modelQueueArguments("ns", { ...policy, maxLength: 20_000, messageTtlSeconds: 900 });
    expect(argumentDifferences(current, desired)).toEqual([
      "x-max-length is 10000 on the queue, but spec.queue.maxLength asks for 20000",
      "x-message-ttl is 600000 (600 s) on the queue, but spec.queue.messageTtlSeconds asks for 900000 (900 s)",
    ]);
    const noDeadLetter = modelQueueArguments("ns", { ...policy, deadLetter: false });
    expect(argumentDifferences(current, noDeadLetter)).toEqual([
      'x-dead-letter-exchange is "turnpike.ns.dlx" on the queue, but spec.queue.deadLetter asks for unset',
      'x-dead-letter-strategy is "at-least-once" on the queue, but spec.queue.deadLetter asks for unset',
    ]);
  });
});

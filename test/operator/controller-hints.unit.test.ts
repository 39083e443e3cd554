/**
 * Which reconciles the Controller asks to be status-only (ReconcileHint): after a worker
 * Deployment's status change, or a model event that brings no new spec; never when a full one
 * was asked for since the last started. A recording registration stands in for the reconciler;
 * nothing connects to a broker or Redis (both connect lazily).
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { InferenceModel } from "../../operator/api/index.js";
import { loadOperatorEnv } from "../../operator/config.js";
import { Controller } from "../../operator/controller.js";
import { INFERENCE_MODEL_KIND } from "../../operator/shared/names.js";
import { apiChildReader, type ChildReader } from "../../operator/shared/child-reader.js";
import { plainSettings } from "./helpers/im-fixtures.js";

let controller: Controller | undefined;
afterEach(async () => controller?.stop());

/** Which resourceVersions count as the operator's own writes (what WatchCache.isOwnWrite tells). */
const ownVersions = new Set<string>();

function recording() {
  const runs: { name: string; statusOnly: boolean }[] = [];
  ownVersions.clear();
  const resources: ChildReader = {
    ...apiChildReader,
    isOwnWrite: (_kind, object) => ownVersions.has(object.metadata?.resourceVersion ?? ""),
  };
  controller = new Controller({
    resources,
    env: loadOperatorEnv({}),
    settings: plainSettings,
    kinds: [
      {
        kind: INFERENCE_MODEL_KIND,
        model: InferenceModel,
        reconcile: async (_ctx, _namespace, name, hint) => {
          runs.push({ name, statusOnly: !!hint?.statusOnly });
        },
        onGiveUp: async () => undefined,
      },
    ],
    renderRuntimeConfig: async () => undefined,
  });
  return { controller, runs };
}

const model = (generation: number, observedGeneration?: number, resourceVersion?: string): KubernetesObject =>
  ({
    kind: INFERENCE_MODEL_KIND,
    metadata: { namespace: "ns", name: "m", generation, resourceVersion },
    ...(observedGeneration === undefined ? {} : { status: { observedGeneration } }),
  }) as KubernetesObject;

const deployment = (available: number): KubernetesObject =>
  ({
    kind: "Deployment",
    metadata: {
      namespace: "ns",
      name: "m",
      labels: { "turnpike.dev/owner-kind": "inferencemodel", "turnpike.dev/owner": "m" },
    },
    status: { availableReplicas: available },
  }) as KubernetesObject;

describe("Controller reconcile hints", () => {
  it("runs a new spec in full, and only the status for what brings none", async () => {
    const { controller, runs } = recording();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1));
    await controller.idle();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1)); // e.g. the finalizer's echo
    await controller.idle();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(2, 1)); // a spec change
    await controller.idle();
    controller.childChanged("Deployment", "update", deployment(1));
    await controller.idle();
    controller.childChanged("Deployment", "update", deployment(1)); // same status: nothing
    await controller.idle();
    expect(runs.map((r) => r.statusOnly)).toEqual([false, true, false, true]);
  });

  it("after a run, updates the status for a change that came during it, unless a new spec came too", async () => {
    const { controller, runs } = recording();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1)); // starts at once
    controller.childChanged("Deployment", "update", deployment(1)); // while it runs
    await controller.idle();
    expect(runs.map((r) => r.statusOnly)).toEqual([false, true]);

    runs.length = 0;
    controller.objectChanged(INFERENCE_MODEL_KIND, model(2, 1));
    controller.objectChanged(INFERENCE_MODEL_KIND, model(3, 1)); // a full run is now owed
    controller.childChanged("Deployment", "update", deployment(2));
    await controller.idle();
    expect(runs.map((r) => r.statusOnly)).toEqual([false, false]);
  });

  it("runs nothing for the echo of the operator's own write, but does for a newer version", async () => {
    const { controller, runs } = recording();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1, undefined, "10"));
    await controller.idle();
    ownVersions.add("11"); // e.g. its finalizer patch
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1, undefined, "11"));
    await controller.idle();
    controller.objectChanged(INFERENCE_MODEL_KIND, model(1, 1, "12")); // someone else's write
    await controller.idle();
    ownVersions.add("14");
    // An own write that brings a generation not seen before is still reconciled.
    controller.objectChanged(INFERENCE_MODEL_KIND, model(2, 1, "14"));
    await controller.idle();
    expect(runs).toHaveLength(3);
  });
});

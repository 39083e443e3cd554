/**
 * A namespace whose runtime config is larger than a ConfigMap can hold as JSON (2,000 models, over
 * 1 MiB pretty): rendered through the operator's renderer into the real kube-apiserver, read back
 * into a Pod's volume by the node agent as a kubelet would, and read by the runtime's reader. The
 * models come from an in-memory stand-in for the operator's watch cache (creating 2,000 CRs is
 * slow and not what is under test here).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import type { KubernetesObject } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeApi } from "../../hack/node-agent/kube-api.js";
import { syncVolumes } from "../../hack/node-agent/pod-spec.js";
import type { InferenceModel } from "../../operator/api/index.js";
import { desiredRuntimeConfig } from "../../operator/runtime-config/desired.js";
import { renderRuntimeConfig } from "../../operator/runtime-config/render.js";
import { UnroutedModels } from "../../operator/runtime-config/unrouted-models.js";
import { apiChildReader, type ChildReader } from "../../operator/shared/child-reader.js";
import type { ReconcileContext } from "../../operator/shared/context.js";
import { PermanentError } from "../../operator/shared/errors.js";
import { INFERENCE_MODEL_KIND, RUNTIME_CONFIG_DIR, RUNTIME_CONFIG_MAP } from "../../operator/shared/names.js";
import {
  parseRuntimeConfig,
  RUNTIME_CONFIG_GZIP_KEY,
  RUNTIME_CONFIG_KEY,
} from "../../runtime/shared/contracts/index.js";
import { logger } from "../../runtime/shared/logger.js";
import { readRuntimeConfig } from "../../runtime/shared/runtime-config-file.js";
import { auditMark, createNamespace, deleteNamespace, kubectl, writesSince } from "../harness/kube.js";
import { syntheticModels } from "./helpers/synthetic-models.js";

const namespace = `rc-large-${process.pid}`;
let models: InferenceModel[] = [];
let podDir: string;

/** The namespace's InferenceModels as the watch cache would list them; nothing else. */
const resources: ChildReader = {
  get: async () => undefined,
  list: async (kind) => (kind.kind === INFERENCE_MODEL_KIND ? (models as KubernetesObject[]) : []),
  applied: () => undefined,
  deleted: () => undefined,
};
const changed: string[] = [];
const unrouted = new UnroutedModels((_namespace, name) => changed.push(name));
const ctx = {
  log: logger("operator"),
  children: apiChildReader,
  resources,
  unrouted,
} as unknown as ReconcileContext;

/** A Pod mounting the runtime config as the worker, gateway and collector Deployments do. */
const pod = {
  metadata: { name: "reader", namespace },
  spec: {
    containers: [{ name: "c", volumeMounts: [{ name: "runtime-config", mountPath: RUNTIME_CONFIG_DIR }] }],
    volumes: [{ name: "runtime-config", configMap: { name: RUNTIME_CONFIG_MAP } }],
  },
};

/** What the runtime in that Pod reads now. */
async function readThroughVolume() {
  const dirs = await syncVolumes(new KubeApi(process.env.KUBECONFIG!), pod, podDir, join(podDir, "pvcs"));
  const dir = dirs.get("runtime-config")!;
  return { files: readdirSync(dir).sort(), config: readRuntimeConfig(join(dir, RUNTIME_CONFIG_KEY)) };
}

async function liveConfigMap() {
  const result = await kubectl(["get", "configmap", RUNTIME_CONFIG_MAP, "-n", namespace, "-o", "json"]);
  return result.code === 0 ? JSON.parse(result.stdout) : undefined;
}

beforeAll(async () => {
  await createNamespace(namespace);
  podDir = mkdtempSync(join(tmpdir(), "rc-large-"));
});

afterAll(async () => {
  await deleteNamespace(namespace);
  if (podDir) rmSync(podDir, { recursive: true, force: true });
});

describe("a runtime config larger than 1 MiB", () => {
  it("goes from runtime.json to runtime.json.gz, reaches the runtime, and a resync writes nothing", async () => {
    models = syntheticModels(20, namespace);
    await renderRuntimeConfig(ctx, namespace);
    let read = await readThroughVolume();
    expect(read.files).toEqual([RUNTIME_CONFIG_KEY]);
    expect(read.config.models).toHaveLength(20);

    models = syntheticModels(2000, namespace);
    const expected = parseRuntimeConfig(desiredRuntimeConfig(namespace, models, [], []).config);
    expect(Buffer.byteLength(JSON.stringify(expected, null, 2))).toBeGreaterThan(1024 * 1024);
    await renderRuntimeConfig(ctx, namespace);
    const live = await liveConfigMap();
    expect(live.data).toBeUndefined();
    expect(Object.keys(live.binaryData)).toEqual([RUNTIME_CONFIG_GZIP_KEY]);
    read = await readThroughVolume();
    // The old key left the volume with the ConfigMap, as under a kubelet.
    expect(read.files).toEqual([RUNTIME_CONFIG_GZIP_KEY]);
    expect(read.config).toEqual(expected);

    const mark = auditMark();
    await renderRuntimeConfig(ctx, namespace);
    expect(writesSince(mark).filter((w) => w.namespace === namespace && w.verb !== "get")).toEqual([]);
  });

  it("refuses a config that does not fit even gzipped, keeps the last one and names the models it lacks", async () => {
    const before = await liveConfigMap();
    const routed = models;
    // 2,500 more models with incompressible URIs pass one ConfigMap's ceiling even gzipped.
    const added = syntheticModels(4500, namespace)
      .slice(2000)
      .map((model, i) => {
        const noise = [0, 1, 2, 3, 4, 5, 6, 7]
          .map((k) => createHash("sha512").update(`${i}/${k}`).digest("base64url"))
          .join("");
        model.spec!.model.uri = `https://models.example.com/${noise}.onnx`;
        return model;
      });
    models = [...routed, ...added];
    const error = await renderRuntimeConfig(ctx, namespace).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe("RuntimeConfigTooLarge");
    expect((error as Error).message).toMatch(/4500 models is \d+ bytes gzipped/);
    const after = await liveConfigMap();
    expect(after.metadata.resourceVersion).toBe(before.metadata.resourceVersion);
    expect((await readThroughVolume()).config.models).toHaveLength(2000);
    // Exactly the models the runtime does not have are Degraded, and each is reconciled to say so.
    const name = (m: InferenceModel) => m.metadata!.name!;
    expect(changed.sort()).toEqual(added.map(name).sort());
    expect(unrouted.problemFor(namespace, name(routed[0]!))).toBeUndefined();
    const problem = unrouted.problemFor(namespace, name(added[0]!));
    expect(problem?.reason).toBe("RuntimeConfigTooLarge");
    expect(problem?.message).toMatch(/not in the runtime config.*split the models over namespaces/);

    // Back under the ceiling: the config is written and the problem goes.
    changed.length = 0;
    models = routed;
    await renderRuntimeConfig(ctx, namespace);
    expect(changed).toHaveLength(added.length);
    expect(unrouted.problemFor(namespace, name(added[0]!))).toBeUndefined();
  });

  it("deletes the ConfigMap when no model is left", async () => {
    models = [];
    await renderRuntimeConfig(ctx, namespace);
    expect(await liveConfigMap()).toBeUndefined();
  });
});

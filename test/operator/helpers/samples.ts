/**
 * The samples/ manifests as objects for pure tests, stamped with the metadata the apiserver would
 * give them, and exact-text golden files.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { loadAll } from "js-yaml";
import { expect } from "vitest";
import type { InferenceModel, Pipeline, TenantQuota } from "../../../operator/api/index.js";
import { repoRoot } from "../../harness/kube.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Manifest = { kind: string; metadata: Record<string, any>; [key: string]: unknown };

/** Every manifest in samples/, in file order. */
export function sampleManifests(): Manifest[] {
  const dir = join(repoRoot, "samples");
  return readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .flatMap((f) => loadAll(readFileSync(join(dir, f), "utf8")) as Manifest[]);
}

/** samples/shadow/pipeline-ocr-shadow.yaml: the `ocr` Pipeline with a shadow to the GPU sample. */
export function shadowPipeline(): Pipeline {
  const file = join(repoRoot, "samples/shadow/pipeline-ocr-shadow.yaml");
  return loadAll(readFileSync(file, "utf8"))[0] as Pipeline;
}

let counter = 0;

/** A copy of `object` as the apiserver returns it. */
export function stored<T extends { metadata?: Record<string, unknown> }>(
  object: T,
  metadata: Record<string, unknown> = {},
): T {
  const copy = structuredClone(object);
  counter += 1;
  copy.metadata = {
    namespace: "models",
    uid: `00000000-0000-4000-8000-${String(counter).padStart(12, "0")}`,
    generation: 1,
    creationTimestamp: "2026-01-01T00:00:00Z",
    ...copy.metadata,
    ...metadata,
  };
  return copy;
}

/** The samples by kind, stored in namespace `namespace`. */
export function samplesByKind(namespace = "models") {
  const all = sampleManifests().map((m) => stored(m, { namespace }));
  return {
    models: all.filter((m) => m.kind === "InferenceModel") as unknown as InferenceModel[],
    pipelines: all.filter((m) => m.kind === "Pipeline") as unknown as Pipeline[],
    tenants: all.filter((m) => m.kind === "TenantQuota") as unknown as TenantQuota[],
    secrets: all.filter((m) => m.kind === "Secret") as unknown as Array<{
      metadata: { name: string };
      stringData: Record<string, string>;
    }>,
  };
}

const goldenDir = join(repoRoot, "test/operator/golden");

/** Compares `text` with test/operator/golden/<name> exactly; UPDATE_GOLDEN=1 rewrites the file. */
export function expectGoldenText(name: string, text: string): void {
  const path = join(goldenDir, name);
  if (process.env.UPDATE_GOLDEN === "1") {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    return;
  }
  if (!existsSync(path)) throw new Error(`golden file ${path} is missing; run with UPDATE_GOLDEN=1`);
  expect(text, `golden file ${path} (UPDATE_GOLDEN=1 regenerates it)`).toBe(readFileSync(path, "utf8"));
}

/**
 * InferenceModel fixtures for operator tests: the samples as objects, stamped with the metadata
 * the apiserver would give them, settings, and golden-file comparison.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { dump, load } from "js-yaml";
import type { InferenceModel } from "../../../operator/api/index.js";
import type { OperatorSettings } from "../../../operator/config.js";
import { repoRoot } from "../../harness/kube.js";
import { expectGoldenText } from "./samples.js";

/** The InferenceModel in samples/<file>, as written (no defaults, no server metadata). */
export function sampleModel(file: string): InferenceModel {
  return load(readFileSync(join(repoRoot, "samples", file), "utf8")) as InferenceModel;
}

/** A copy of `im` as the apiserver returns it: namespace, uid and generation set. */
export function stored(
  im: InferenceModel,
  metadata: { namespace?: string; uid?: string; generation?: number } = {},
): InferenceModel {
  const copy = structuredClone(im);
  copy.metadata = {
    ...copy.metadata,
    namespace: metadata.namespace ?? "models",
    uid: metadata.uid ?? "8f14e45f-ceea-467f-a0e6-0123456789ab",
    generation: metadata.generation ?? 1,
  };
  return copy;
}

/** Settings as a default install renders them: no Prometheus, no Prometheus Operator. */
export const plainSettings: OperatorSettings = {
  runtimeImage: "ghcr.io/turnpike-dev/turnpike-runtime:0.1.0",
  runtimeSecret: "turnpike-runtime",
  serviceMonitors: false,
};

/** Settings with Prometheus and the Prometheus Operator available. */
export const monitoredSettings: OperatorSettings = {
  ...plainSettings,
  prometheusUrl: "http://prometheus-operated.monitoring.svc:9090",
  serviceMonitors: true,
};

/**
 * Compares `value` (rendered as YAML) with test/operator/golden/<name>.yaml. UPDATE_GOLDEN=1
 * (re)writes the file instead; review the diff before committing it.
 */
export function expectGolden(name: string, value: unknown): void {
  expectGoldenText(
    `${name}.yaml`,
    `# Golden file: ${name}. Regenerate with UPDATE_GOLDEN=1 and review the diff.\n` +
      dump(value, { noRefs: true, lineWidth: -1, quotingType: '"' }),
  );
}

/**
 * The runtime config as a running worker sees it: pipelines (step settings) and batching follow
 * the file; other changes to the served model need a restart (the operator rolls the Deployment
 * for those anyway).
 */
import type { ModelConfig, RuntimeConfig } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";
import { watchRuntimeConfig } from "../shared/runtime-config-file.js";

/** The current config and the served model's batching, replaced on reload. */
export class LiveConfig {
  batching: ModelConfig["batching"];

  constructor(
    public config: RuntimeConfig,
    readonly model: ModelConfig,
  ) {
    this.batching = model.batching;
  }

  /** The `parameters` of a pipeline step (read per request, so a reload applies at once). */
  stepSettings(target: { kind: string; name: string }, step: string): Readonly<Record<string, string>> {
    return stepSettings(this.config, target, step);
  }

  /**
   * Follows the file at `path`; `onBatching` gets each changed batching, `onConfig` every reloaded
   * config (new tenants get their lanes consumed). Returns the stop function.
   */
  follow(
    path: string,
    log: Logger,
    onBatching: (batching: ModelConfig["batching"]) => void,
    onConfig?: (config: RuntimeConfig) => void,
  ): () => void {
    return watchConfig(
      path,
      this.model,
      (next) => {
        this.batching = next;
        onBatching(next);
      },
      log,
      (next) => {
        this.config = next;
        onConfig?.(next);
      },
    );
  }
}

/** The `parameters` of a pipeline step, when the request targets a pipeline that has them. */
function stepSettings(
  config: RuntimeConfig,
  target: { kind: string; name: string },
  step: string,
): Readonly<Record<string, string>> {
  if (target.kind !== "pipeline") return {};
  const pipeline = config.pipelines.find((p) => p.name === target.name);
  return pipeline?.steps.find((s) => s.name === step)?.parameters ?? {};
}

/**
 * Follows the config file: pipelines (step settings) and batching apply at once; other changes to
 * the served model need a restart (the operator rolls the Deployment for those anyway).
 */
function watchConfig(
  path: string,
  initial: ModelConfig,
  applyBatching: (batching: ModelConfig["batching"]) => void,
  log: Logger,
  onConfig: (config: RuntimeConfig) => void,
): () => void {
  let current = initial;
  return watchRuntimeConfig(
    path,
    (config) => {
      onConfig(config);
      const next = config.models.find((m) => m.name === initial.name);
      if (!next) return log.warn("the reloaded config no longer has this model; still serving it");
      if (JSON.stringify(next.batching) !== JSON.stringify(current.batching)) {
        applyBatching(next.batching);
        log.info({ batching: next.batching }, "batching updated");
      }
      const { batching: _a, ...rest } = next;
      const { batching: _b, ...was } = current;
      if (JSON.stringify(rest) !== JSON.stringify(was)) log.warn("model config changed; restart to apply");
      current = next;
    },
    (err) => log.error({ err }, "reloading the runtime config"),
  );
}

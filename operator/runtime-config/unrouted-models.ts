/**
 * The models a namespace's runtime config could not carry (it is too large for one ConfigMap), so
 * their reconciles report Degraded instead of a silent missing route. In memory: the renderer sets
 * it on every render, so an operator restart finds it again.
 */
import type { ModelConfig, RuntimeConfig } from "../../runtime/shared/contracts/index.js";
import { PermanentError } from "../shared/errors.js";

export const RUNTIME_CONFIG_TOO_LARGE = "RuntimeConfigTooLarge";

/** Models of `desired` whose entry in `live` (what the runtime reads) is missing or different (pure). */
export function unroutedModels(desired: RuntimeConfig, live: RuntimeConfig | undefined): string[] {
  const liveModels = new Map<string, ModelConfig>((live?.models ?? []).map((m) => [m.name, m]));
  return desired.models
    .filter((m) => JSON.stringify(liveModels.get(m.name)) !== JSON.stringify(m))
    .map((m) => m.name);
}

export class UnroutedModels {
  readonly #byNamespace = new Map<string, { names: Set<string>; message: string }>();

  /** `changed` is told each model whose problem appeared or went (its status needs a reconcile). */
  constructor(private readonly changed: (namespace: string, name: string) => void = () => undefined) {}

  /** Records the namespace's unrouted models (an empty list clears it). */
  set(namespace: string, names: readonly string[], message = ""): void {
    const before = this.#byNamespace.get(namespace);
    const after = new Set(names);
    if (after.size > 0) this.#byNamespace.set(namespace, { names: after, message });
    else this.#byNamespace.delete(namespace);
    const messageChanged = (before?.message ?? "") !== message;
    for (const name of before?.names ?? [])
      if (!after.has(name) || messageChanged) this.changed(namespace, name);
    for (const name of after) if (!before?.names.has(name)) this.changed(namespace, name);
  }

  /** The Degraded cause of one model, if its config is not what the runtime reads. */
  problemFor(namespace: string, name: string): PermanentError | undefined {
    const entry = this.#byNamespace.get(namespace);
    if (!entry?.names.has(name)) return undefined;
    return new PermanentError(
      RUNTIME_CONFIG_TOO_LARGE,
      `this model's current spec is not in the runtime config, so the gateways and workers do not route it as is: ${entry.message}`,
    );
  }
}

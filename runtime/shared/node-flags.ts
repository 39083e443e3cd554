/**
 * The Node flags each runtime role starts with, wherever it runs: the worker Deployment's command
 * (operator), the local node agent under `make run`, and the bench. V8 heap options are refused in
 * NODE_OPTIONS, so they go on the command line before the entry point.
 *
 * worker, `--initial-old-space-size=128`: the worker's live heap (~35 MB in the bench) sits close to
 * V8's old-generation limit once an idle spell has shrunk that limit; under load V8 then ran a full
 * collection every ~1.5 s that freed under 1 MB, ~40 ms of CPU each on the model's own core (0.4-1
 * ms per OCR line, bench/README.md "Ninth round"). With a 128 MB initial limit those collections
 * wait until there is garbage to collect; the price is up to ~90 MB more resident memory per worker.
 */
export const ROLE_NODE_FLAGS = {
  gateway: [],
  worker: ["--initial-old-space-size=128"],
  collector: [],
} as const satisfies Record<"gateway" | "worker" | "collector", readonly string[]>;

/** The runtime image's entry point (Dockerfile.runtime's ENTRYPOINT, after `node`). */
export const RUNTIME_IMAGE_ENTRY = "/app/docker/turnpike-runtime.mjs";

/** A runtime-image container's command for `role`: node, the role's flags, the entry point. */
export function runtimeCommand(role: keyof typeof ROLE_NODE_FLAGS): string[] {
  return ["node", ...ROLE_NODE_FLAGS[role], RUNTIME_IMAGE_ENTRY];
}

/** The node flags of a container command made by {@link runtimeCommand} (pure; [] without one). */
export function nodeFlagsOf(command: readonly string[] | undefined): string[] {
  if (!command || command[0] !== "node") return [];
  return command.slice(1).filter((arg) => arg.startsWith("--"));
}

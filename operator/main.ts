/**
 * Entry point of the operator process (`npx tsx operator/main.ts`, KUBECONFIG or in-cluster
 * credentials). Pepr registers Reconcile() bindings only when PEPR_WATCH_MODE is "true" at the
 * moment it is first imported, so this file sets it and loads everything else dynamically.
 */
import { describeError } from "./shared/errors.js";

process.env.PEPR_WATCH_MODE = "true";

const { runOperator } = await import("./module.js");
await runOperator().catch((error: unknown) => {
  process.stderr.write(`turnpike operator failed to start: ${describeError(error)}\n`);
  process.exit(1);
});

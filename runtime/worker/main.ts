/** Entry point of the worker role: start, report readiness, drain and exit on SIGTERM/SIGINT. */
import { runRole } from "../shared/run-role.js";
import { startWorker } from "./worker.js";

await runRole("worker", () =>
  startWorker({
    // The connection is gone for good: exit non-zero so the pod restarts and its messages requeue.
    onFatal: () => process.exit(1),
  }),
);

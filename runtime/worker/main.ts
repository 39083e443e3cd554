/** Entry point of the worker role: start, report readiness, drain and exit on SIGTERM/SIGINT. */
import { runRole } from "../shared/run-role.js";
import { startWorker } from "./worker.js";

await runRole("worker", () =>
  startWorker({
    // The model broke or the broker cancelled the consumer: exit non-zero so the pod restarts.
    onFatal: () => process.exit(1),
  }),
);

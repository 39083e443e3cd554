/** Entry point of the worker role: start, report readiness, drain and exit on SIGTERM/SIGINT. */
import { logger } from "../shared/logger.js";
import { startWorker } from "./worker.js";

const log = logger("worker-main");

try {
  const worker = await startWorker({
    // The connection is gone for good: exit non-zero so the pod restarts and its messages requeue.
    onFatal: () => process.exit(1),
  });
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down: draining in-flight work");
    worker.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  await worker.ready;
} catch (err) {
  log.fatal({ err }, "worker failed to start");
  process.exit(1);
}

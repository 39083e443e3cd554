/**
 * The life of a role's process: start it, stop it gracefully on SIGTERM/SIGINT (a pod's
 * termination), and exit non-zero with the reason when it cannot start.
 */
import { logger } from "./logger.js";

export interface RunningRole {
  close(): Promise<void>;
  /** Resolves once the role serves (a worker after model warm-up); optional. */
  ready?: Promise<void>;
}

export async function runRole(role: string, start: () => Promise<RunningRole>): Promise<void> {
  const log = logger(`${role}-main`);
  try {
    const running = await start();
    const shutdown = (signal: string) => {
      log.info({ signal }, "shutting down: finishing in-flight work");
      running.close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
    await running.ready;
  } catch (err) {
    log.fatal({ err }, `${role} failed to start`);
    process.exit(1);
  }
}

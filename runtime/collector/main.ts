/** Entry point of the collector role: start, then stop gracefully on SIGTERM/SIGINT. */
import { logger } from "../shared/logger.js";
import { startCollector } from "./collector.js";

const log = logger("collector-main");

try {
  const collector = await startCollector();
  const shutdown = (signal: string) => {
    log.info({ signal }, "shutting down");
    collector.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
} catch (err) {
  log.fatal({ err }, "collector failed to start");
  process.exit(1);
}

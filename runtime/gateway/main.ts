/** Entry point of the gateway role: read the environment, start, stop cleanly on SIGTERM/SIGINT. */
import { logger } from "../shared/logger.js";
import { gatewayEnv } from "./config.js";
import { startGateway } from "./gateway.js";

const log = logger("gateway-main");

try {
  const env = gatewayEnv();
  const gateway = await startGateway({ env, config: env.TURNPIKE_CONFIG });
  const stop = async (signal: string) => {
    log.info({ signal }, "stopping");
    await gateway.close();
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
} catch (error) {
  log.fatal({ err: error }, "gateway failed to start");
  process.exit(1);
}

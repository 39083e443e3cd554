/** Entry point of the gateway role. */
import { runRole } from "../shared/run-role.js";
import { gatewayEnv } from "./config.js";
import { startGateway } from "./gateway.js";

await runRole("gateway", () => {
  const env = gatewayEnv();
  return startGateway({ env, config: env.TURNPIKE_CONFIG });
});

/** Entry point of the collector role. */
import { runRole } from "../shared/run-role.js";
import { startCollector } from "./collector.js";

await runRole("collector", () => startCollector());

/** Entry point of the collector role. */
import { lowerCpuPriority } from "../shared/cpu-priority.js";
import { runRole } from "../shared/run-role.js";
import { startCollector } from "./collector.js";
import { loadCollectorSettings } from "./config.js";

await runRole("collector", async () => {
  const collector = await startCollector();
  // Off the answer path: once started (start-up keeps the usual priority), yield the CPU to the
  // roles that answer (see TURNPIKE_COLLECTOR_NICE).
  lowerCpuPriority(loadCollectorSettings().env.TURNPIKE_COLLECTOR_NICE);
  return collector;
});

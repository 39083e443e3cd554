/**
 * The unique names one test run hands out, and the broker objects left under them. Queues outlive
 * a test whose clean-up did not run or raced a reconnecting client, and RabbitMQ keeps them across
 * restarts; on a machine that runs the suite again and again, idle quorum queues pile up (each one
 * is a Raft cluster that ticks) and slow every later run and benchmark. The run records each name
 * (uniqueName, uniqueNamespace) in one file, and the global teardown deletes what is left under them.
 */
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import type { ServiceUrls } from "./services.js";

/** Environment variable naming the run's names file (set in every test worker by setup-env.ts). */
export const RUN_NAMES_ENV = "TURNPIKE_TEST_RUN_NAMES";

/** Adds `name` to the run's names file, when the process runs under the suite's global setup. */
export function recordRunName(name: string): void {
  const file = process.env[RUN_NAMES_ENV];
  if (file) appendFileSync(file, `${name}\n`);
}

/** Queue and exchange names under `turnpike.<name>.` for any recorded name. */
export function leftoverNames(all: string[], runNames: string[]): string[] {
  const heads = new Set(runNames.map((n) => `turnpike.${n}.`));
  return all.filter((object) => {
    const match = /^turnpike\.([^.]+)\./.exec(object);
    return match !== null && heads.has(`turnpike.${match[1]}.`);
  });
}

/** Deletes the queues and exchanges left under the names recorded in `file`; returns how many. */
export async function deleteRunLeftovers(file: string, urls: ServiceUrls): Promise<number> {
  if (!existsSync(file)) return 0;
  const runNames = readFileSync(file, "utf8").split("\n").filter(Boolean);
  if (runNames.length === 0) return 0;
  const headers = {
    authorization: `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`,
  };
  let deleted = 0;
  for (const kind of ["queues", "exchanges"] as const) {
    const res = await fetch(`${urls.rabbitManagementUrl}/api/${kind}/%2F?columns=name`, { headers });
    if (!res.ok) continue;
    const all = ((await res.json()) as { name: string }[]).map((o) => o.name);
    for (const name of leftoverNames(all, runNames)) {
      const gone = await fetch(`${urls.rabbitManagementUrl}/api/${kind}/%2F/${encodeURIComponent(name)}`, {
        method: "DELETE",
        headers,
      });
      if (gone.ok) deleted += 1;
    }
  }
  return deleted;
}

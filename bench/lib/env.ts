/**
 * Where the benchmark runs: the repository, the loopback services (as hack/services.sh starts
 * them) and the machine itself (cores, memory, Node, load average), reported next to every table.
 */
import { cpus, freemem, loadavg, totalmem } from "node:os";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { serviceUrls, uniqueName } from "../../test/harness/services.js";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

export { uniqueName };

/** The text of the benchmark's line image: 315 px wide at height 48, so the tensor is 48x320. */
export const BENCH_LINE = "Order 7731 shipped";

/** Connection strings of the loopback services; the management URL carries its credentials. */
export function services() {
  const urls = serviceUrls();
  const management = new URL(urls.rabbitManagementUrl);
  management.username = urls.rabbitUser;
  management.password = urls.rabbitPassword;
  return {
    amqpUrl: urls.amqpUrl,
    redisUrl: urls.redisUrl,
    databaseUrl: urls.databaseUrl,
    rabbitManagementUrl: management.toString().replace(/\/$/, ""),
  };
}

/** What the machine is and how busy it is right now. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memoryMb: number;
  freeMemoryMb: number;
  node: string;
  loadAverage: [number, number, number];
}

export function machine(): MachineInfo {
  const [one, five, fifteen] = loadavg();
  return {
    nproc: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? "unknown",
    memoryMb: Math.round(totalmem() / 2 ** 20),
    freeMemoryMb: Math.round(freemem() / 2 ** 20),
    node: process.version,
    loadAverage: [round(one!), round(five!), round(fifteen!)],
  };
}

function round(n: number): number {
  return Math.round(n * 100) / 100;
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Prints one progress line to stderr (the table goes to stdout). */
export function say(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

const cleanups = new Set<() => Promise<unknown>>();

/** Registers cleanup to run if the run is interrupted (Ctrl-C); returns its unregistration. */
export function onInterrupt(cleanup: () => Promise<unknown>): () => void {
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}

/** On SIGINT/SIGTERM: run every registered cleanup (newest first), then exit 130. */
export function installInterruptHandler(): void {
  const handler = (signal: string) => {
    say(`${signal}: cleaning up (child processes, queues, control plane)`);
    void (async () => {
      for (const cleanup of [...cleanups].reverse()) await cleanup().catch(() => undefined);
      process.exit(signal === "uncaughtException" ? 1 : 130);
    })();
  };
  process.once("SIGINT", () => handler("SIGINT"));
  process.once("SIGTERM", () => handler("SIGTERM"));
  process.once("uncaughtException", (error) => {
    say(`crashed: ${error.stack ?? error.message}`);
    handler("uncaughtException");
  });
}

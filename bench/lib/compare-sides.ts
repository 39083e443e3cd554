/**
 * What the side-by-side scripts (echo-, ocr-, dedicated-compare) share: their `--name=value`
 * options, and starting one runtime role of a given checkout for an installation.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "../../hack/control-plane.js";
import type { Installation } from "../sections/end-to-end.js";
import { nodeArgsFrom, startProcess, waitHealthy, type ChildHandle } from "./processes.js";

/** The value of `--name=value` on the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const found = process.argv.find((a) => a.startsWith(`--${name}=`));
  return found ? found.slice(name.length + 3) : fallback;
}

/** The checkouts to compare: `--roots=a,b` as absolute paths (default: this one). */
export function rootsArg(): string[] {
  return arg("roots", ".")
    .split(",")
    .map((r) => resolve(r));
}

/** `root?KEY=VALUE&KEY=VALUE` -> the checkout's path and the environment of its roles. */
export function parseRoot(spec: string): { root: string; env: Record<string, string> } {
  const [path = ".", query = ""] = spec.split("?", 2);
  return { root: resolve(path), env: Object.fromEntries(new URLSearchParams(query)) };
}

export type RoleName = "gateway" | "worker" | "collector";

export interface RoleOptions {
  /** Extra environment of the role. */
  env?: Record<string, string>;
  /** Pins the role to these CPUs (taskset), e.g. "1". */
  cpus?: string;
  /** Node options before the entry point. */
  nodeArgs?: string[];
}

/**
 * Starts `role` from the checkout at `root` and waits until it is healthy. BENCH_CPU_PROF=<dir>
 * makes every role write a V8 CPU profile there when it exits; BENCH_<ROLE>_NODE_ARGS adds node
 * options to one role (e.g. BENCH_WORKER_NODE_ARGS="--max-semi-space-size=16"). BENCH_COMPILED=1
 * (in the environment, or in the role's `env`: `--roots=.,.?BENCH_COMPILED=1`) runs the checkout's tsc build (`npm run build` there: dist/), as the runtime image does, instead
 * of the TypeScript sources under tsx (whose name-keeping helper runs for every closure created).
 */
export async function startRoleOf(
  install: Installation,
  root: string,
  role: RoleName,
  options: RoleOptions = {},
): Promise<{ handle: ChildHandle; url: string }> {
  const port = await freePort();
  const env = install.env(port, { TURNPIKE_ROLE: role, ...options.env });
  const profile = process.env.BENCH_CPU_PROF
    ? ["--cpu-prof", "--cpu-prof-dir", process.env.BENCH_CPU_PROF]
    : [];
  const own = nodeArgsFrom(`BENCH_${role.toUpperCase()}_NODE_ARGS`);
  const compiled = (options.env?.BENCH_COMPILED ?? process.env.BENCH_COMPILED) === "1";
  const entry = compiled ? compiledEntry(root, role) : undefined;
  const node = [
    process.execPath,
    ...profile,
    ...(await roleNodeFlags(root, role)),
    ...own,
    ...(options.nodeArgs ?? []),
    ...(entry ? [entry] : ["--import", "tsx", join(root, `runtime/${role}/main.ts`)]),
  ];
  // taskset execs node in place, so the handle's pid is node's.
  const handle = options.cpus
    ? startProcess(`${role}-${install.prefix}`, "taskset", ["-c", options.cpus, ...node], env)
    : startProcess(`${role}-${install.prefix}`, node[0]!, node.slice(1), env);
  install.children.push(handle);
  const url = `http://127.0.0.1:${port}`;
  await waitHealthy(handle, role === "gateway" ? `${url}/v2/health/ready` : `${url}/readyz`);
  return { handle, url };
}

/** `root`'s compiled entry point of `role`; a missing build is an error, not a silent tsx run. */
/** The role's node flags as that checkout starts it (none in checkouts older than node-flags.ts). */
async function roleNodeFlags(root: string, role: RoleName): Promise<readonly string[]> {
  const path = join(root, "runtime/shared/node-flags.ts");
  if (!existsSync(path)) return [];
  const flags = (await import(path)) as { ROLE_NODE_FLAGS: Record<RoleName, readonly string[]> };
  return flags.ROLE_NODE_FLAGS[role];
}

function compiledEntry(root: string, role: RoleName): string {
  const entry = join(root, `dist/runtime/${role}/main.js`);
  if (!existsSync(entry)) throw new Error(`BENCH_COMPILED=1: no ${entry}; run \`npm run build\` in ${root}`);
  return entry;
}

/**
 * The systems under test run as child processes (never in the load generator's event loop):
 * runtime roles through their real entry points (`node --import tsx runtime/<role>/main.ts`),
 * and bench helpers the same way. Also reads CPU time and memory of any process from /proc, so
 * each figure can say which process spent the CPU.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onInterrupt, repoRoot, sleep } from "./env.js";

/** Where child process logs go (outside the repository). */
export const logDir = join(tmpdir(), "turnpike-bench-logs");

export interface ChildHandle {
  name: string;
  child: ChildProcess;
  pid: number;
  logPath: string;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves on exit. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<ChildProcess>();
// Whatever way this process ends (a crash included), no system under test outlives it.
process.once("exit", () => {
  for (const child of live) child.kill("SIGKILL");
});

/** Node options from a space-separated environment variable (BENCH_<ROLE>_NODE_ARGS and the like). */
export function nodeArgsFrom(variable: string): string[] {
  return (process.env[variable] ?? "").split(" ").filter(Boolean);
}

/** Starts a TypeScript entry point under tsx with its output in a log file. */
export function startTs(
  name: string,
  entry: string,
  env: Record<string, string>,
  options: { ipc?: boolean; args?: string[]; cpus?: string; nodeArgs?: string[] } = {},
): ChildHandle {
  const args = [
    ...(options.nodeArgs ?? []),
    "--import",
    "tsx",
    join(repoRoot, entry),
    ...(options.args ?? []),
  ];
  // taskset execs node in place, so the handle's pid is node's.
  if (options.cpus)
    return startProcess(name, "taskset", ["-c", options.cpus, process.execPath, ...args], env, options);
  return startProcess(name, process.execPath, args, env, options);
}

/** Starts any program (e.g. a peer's Python server) with its output in a log file. */
export function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  options: { ipc?: boolean } = {},
): ChildHandle {
  mkdirSync(logDir, { recursive: true });
  const logPath = join(logDir, `${name}-${Date.now()}.log`);
  const fd = openSync(logPath, "a");
  const child = spawn(command, args, {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: options.ipc ? ["ignore", fd, fd, "ipc"] : ["ignore", fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`could not start ${name} (${command})`);
  live.add(child);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  void exited.then(() => live.delete(child));
  const unregister = onInterrupt(async () => {
    child.kill("SIGKILL");
    await exited;
  });
  void exited.then(unregister);
  return {
    name,
    child,
    pid: child.pid,
    logPath,
    exited,
    async stop(graceMs = 15_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** The last lines of a child's log, for error messages. */
export function logTail(handle: ChildHandle, lines = 30): string {
  try {
    return readFileSync(handle.logPath, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

/** Polls `url` until it answers 200; fails early if the process exits. */
export async function waitHealthy(handle: ChildHandle, url: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (handle.child.exitCode !== null || handle.child.signalCode !== null) {
      const how = handle.child.exitCode ?? handle.child.signalCode;
      throw new Error(`${handle.name} exited (${how}):\n${logTail(handle)}`);
    }
    const ok = await fetch(url, { signal: AbortSignal.timeout(2000) })
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await sleep(200);
  }
  throw new Error(`${handle.name} not healthy at ${url} within ${timeoutMs} ms:\n${logTail(handle)}`);
}

const TICKS_PER_SECOND = 100;

/** CPU time (user + system) of a process in ms; 0 once it is gone. */
export function cpuMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/** CPU ms of each thread of a process by thread id (/proc/<pid>/task); the main thread's id is the pid. */
export function threadCpuMs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      out.set(Number(tid), ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** Resident memory now and at its peak (VmRSS, VmHWM) in MB. */
export function memoryMb(pid: number): { rssMb: number; peakRssMb: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
    return { rssMb: Math.round(field("VmRSS") / 1024), peakRssMb: Math.round(field("VmHWM") / 1024) };
  } catch {
    return { rssMb: 0, peakRssMb: 0 };
  }
}

/** Pids of every process whose command name is `comm` (e.g. the backing services). */
export function pidsOf(comm: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === comm) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A set of named process groups whose CPU time is sampled before and after a measurement. */
export class CpuMeter {
  private readonly groups = new Map<string, () => number[]>();

  /** Adds a group; `pids` is re-evaluated at each sample (PostgreSQL forks backends). */
  track(name: string, pids: () => number[]): this {
    this.groups.set(name, pids);
    return this;
  }

  /** Tracks RabbitMQ, Redis and PostgreSQL by process name. */
  trackServices(): this {
    return this.track("rabbitmq", () => pidsOf("beam.smp"))
      .track("redis", () => pidsOf("redis-server"))
      .track("postgres", () => pidsOf("postgres"));
  }

  sample(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [name, pids] of this.groups)
      out.set(
        name,
        pids().reduce((sum, pid) => sum + cpuMs(pid), 0),
      );
    return out;
  }

  /** CPU ms each group spent between two samples. */
  static diff(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, value] of after) out[name] = Math.max(0, value - (before.get(name) ?? 0));
    return out;
  }
}

/** Jiffies of the whole machine: busy and total, from /proc/stat. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const values = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = values[3]! + values[4]!;
  return { busy: total - idle, total };
}

/** Context switches of the whole machine so far, every process and thread (/proc/stat `ctxt`). */
export function machineContextSwitches(): number {
  return Number(/^ctxt (\d+)$/m.exec(readFileSync("/proc/stat", "utf8"))?.[1] ?? 0);
}

/** Share of all cores busy (0..100) between two machineCpu() samples. */
export function busyPercent(before: ReturnType<typeof machineCpu>, after: ReturnType<typeof machineCpu>) {
  const total = after.total - before.total;
  return total > 0 ? Math.round(((after.busy - before.busy) / total) * 1000) / 10 : 0;
}

/** Pids of every process whose command line contains `text` (e.g. a control plane's state dir). */
export function pidsWithArgument(text: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "utf8").includes(text)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** CPU ms of this process and of its children that have exited (e.g. each autocannon run). */
export function selfCpuMs(): { own: number; exitedChildren: number } {
  const stat = readFileSync("/proc/self/stat", "utf8");
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  const ms = (ticks: number) => (ticks * 1000) / TICKS_PER_SECOND;
  return { own: ms(f[11]! + f[12]!), exitedChildren: ms(f[13]! + f[14]!) };
}

export interface CpuWindowResult {
  elapsedMs: number;
  /** CPU ms by tracked group, plus "bench" (this process) and "load generator" (exited children). */
  cpuMs: Record<string, number>;
  /** Share of all cores busy (0..100). */
  busyPercent: number;
  /** Share of all cores used by processes the benchmark neither runs nor tracks (other work). */
  foreignPercent: number;
  /** Context switches on the whole machine (each one a thread that slept or was preempted). */
  contextSwitches: number;
}

/** Measures where the machine's CPU went between start() and end(). */
export function cpuWindow(meter: CpuMeter) {
  const cores = Number(readFileSync("/proc/cpuinfo", "utf8").match(/^processor\s*:/gm)?.length ?? 1);
  const before = {
    groups: meter.sample(),
    machine: machineCpu(),
    switches: machineContextSwitches(),
    self: selfCpuMs(),
    at: Date.now(),
  };
  return {
    end(): CpuWindowResult {
      const machine = machineCpu();
      const self = selfCpuMs();
      const elapsedMs = Date.now() - before.at;
      const cpuMs = CpuMeter.diff(before.groups, meter.sample());
      cpuMs.bench = self.own - before.self.own;
      cpuMs["load generator"] = self.exitedChildren - before.self.exitedChildren;
      const busyMs = ((machine.busy - before.machine.busy) * 1000) / TICKS_PER_SECOND;
      const ours = Object.values(cpuMs).reduce((a, b) => a + b, 0);
      const capacity = elapsedMs * cores;
      return {
        elapsedMs,
        cpuMs,
        busyPercent: busyPercent(before.machine, machine),
        foreignPercent: Math.max(0, Math.round(((busyMs - ours) / capacity) * 1000) / 10),
        contextSwitches: machineContextSwitches() - before.switches,
      };
    },
  };
}

/** Sockets a process holds open (its file descriptors that are sockets). */
export function openSockets(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).filter((fd) => {
      try {
        return readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith("socket:");
      } catch {
        return false;
      }
    }).length;
  } catch {
    return 0;
  }
}

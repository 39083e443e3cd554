/**
 * Pins processes to cores with util-linux `taskset` (sched_setaffinity on every thread of a pid)
 * for the dedicated-cores mode, and puts the old affinity back afterwards: the backing services
 * are shared with other people's work, so their pinning must not outlive the run, even when it
 * is interrupted.
 */
import { execFileSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { onInterrupt } from "./env.js";

/** Whether `taskset` can be run here. */
export function canPin(): boolean {
  try {
    execFileSync("taskset", ["-p", String(process.pid)], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

/** The affinity list of one thread (e.g. "0-1"); undefined once it is gone. */
function affinityOf(tid: number): string | undefined {
  try {
    const out = execFileSync("taskset", ["-c", "-p", String(tid)], { encoding: "utf8" });
    return out.trim().split(": ").pop();
  } catch {
    return undefined;
  }
}

function threadsOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

function setAffinity(tid: number, cpus: string): void {
  try {
    execFileSync("taskset", ["-c", "-p", cpus, String(tid)], { stdio: "ignore" });
  } catch {
    // the thread ended meanwhile
  }
}

/**
 * Pins every thread of each pid to `cpus` (a taskset list such as "0"); returns the restore
 * function, which puts each thread's own previous affinity back (threads started meanwhile inherit
 * the pinning and get the process's first old affinity). Registered for interrupts too.
 */
export function pinProcesses(pids: readonly number[], cpus: string): () => void {
  const saved = new Map<number, Map<number, string>>();
  for (const pid of pids) {
    const threads = new Map<number, string>();
    for (const tid of threadsOf(pid)) {
      const old = affinityOf(tid);
      if (old === undefined) continue;
      threads.set(tid, old);
      setAffinity(tid, cpus);
    }
    saved.set(pid, threads);
  }
  let restored = false;
  const restore = () => {
    if (restored) return;
    restored = true;
    for (const [pid, threads] of saved) {
      const fallback = threads.values().next().value;
      for (const tid of threadsOf(pid)) {
        const old = threads.get(tid) ?? fallback;
        if (old !== undefined) setAffinity(tid, old);
      }
    }
  };
  const unregister = onInterrupt(async () => restore());
  process.once("exit", restore);
  return () => {
    restore();
    unregister();
    process.off("exit", restore);
  };
}

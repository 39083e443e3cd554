/**
 * Lowers this process's CPU priority (nice) for a role whose work is off the answer path. Linux
 * keeps a nice value per thread, so every thread running now is set; threads started later inherit
 * the value of the thread that starts them. Where this process shares cores with the answer path (a
 * single host, `make run`, the bench) the scheduler then runs the gateway, worker and broker first
 * when they want the CPU at the same moment; in a cluster the pod's own CPU share decides and this
 * changes nothing between pods.
 */
import { readdirSync } from "node:fs";
import { setPriority } from "node:os";

/** Sets nice `nice` (0-19) on every thread of this process; returns how many took it. */
export function lowerCpuPriority(nice: number): number {
  if (nice <= 0) return 0;
  let threads: number[];
  try {
    threads = readdirSync("/proc/self/task").map(Number);
  } catch {
    threads = [0]; // no /proc: the calling thread only
  }
  let set = 0;
  for (const tid of threads) {
    try {
      setPriority(tid, nice);
      set++;
    } catch {
      // A thread that just ended, or a platform without per-thread priorities.
    }
  }
  return set;
}

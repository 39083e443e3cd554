/**
 * Waiting until processes have finished the work a load run left them. A closed-loop run that
 * ends with N connections still has N requests inside the system it loaded, and that system keeps
 * working them off after the load generator is gone; a run of another system started at once
 * pays for them (measured in section 6: 1-2 s of the other side's CPU at 32 connections).
 */
import { sleep } from "./env.js";
import { CpuMeter, cpuWindow } from "./processes.js";

export interface SettleOptions {
  /** Idle once these groups together use less than this share of one core over one step (0..1). */
  idleCores?: number;
  stepMs?: number;
  /** Idle steps in a row that count as idle (a process starved by other load can pause for one). */
  idleSteps?: number;
  /** Gives up after this long (a process that never goes idle must not stall the benchmark). */
  maxMs?: number;
}

/** Waits until `groups` of `meter` are idle; returns how long it waited (ms) and whether they were. */
export async function settle(
  meter: CpuMeter,
  groups: readonly string[],
  { idleCores = 0.05, stepMs = 250, idleSteps = 2, maxMs = 20_000 }: SettleOptions = {},
): Promise<{ waitedMs: number; idle: boolean }> {
  const started = Date.now();
  let quiet = 0;
  while (Date.now() - started < maxMs) {
    const window = cpuWindow(meter);
    await sleep(stepMs);
    const { cpuMs, elapsedMs } = window.end();
    const used = groups.reduce((sum, g) => sum + (cpuMs[g] ?? 0), 0);
    quiet = used < idleCores * elapsedMs ? quiet + 1 : 0;
    if (quiet >= idleSteps) return { waitedMs: Date.now() - started, idle: true };
  }
  return { waitedMs: Date.now() - started, idle: false };
}

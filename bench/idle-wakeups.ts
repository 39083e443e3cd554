/**
 * What wakes in Turnpike's roles while nothing happens: starts the OCR model's gateway, worker and
 * collector (this checkout, as section 6 does), waits, then counts each role's thread wake-ups
 * (voluntary + involuntary context switches of every thread, from /proc) and CPU time over an idle
 * window. Work that runs while nothing changes also runs inside every model run at one connection.
 *
 *   npx tsx bench/idle-wakeups.ts [--seconds=10] [--root=/path/to/another/checkout]
 *
 * Measurements only; nothing asserts.
 */
import { readdirSync, readFileSync } from "node:fs";
import { installInterruptHandler, onInterrupt, say } from "./lib/env.js";
import { arg, startRoleOf } from "./lib/compare-sides.js";
import { Installation, ocrModel } from "./sections/end-to-end.js";

/** Context switches (all threads) and CPU ticks of `pid`, with each thread's name and switches. */
function sample(pid: number) {
  let switches = 0;
  let ticks = 0;
  const threads: Record<string, number> = {};
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
    const n = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
    const own = n("voluntary_ctxt_switches") + n("nonvoluntary_ctxt_switches");
    const name = /Name:\s+(.*)/.exec(status)?.[1] ?? tid;
    threads[name] = (threads[name] ?? 0) + own;
    switches += own;
    const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
    ticks += Number(stat[11]) + Number(stat[12]);
  }
  return { switches, ticks, threads };
}

installInterruptHandler();
const seconds = Number(arg("seconds", "10"));
const root = arg("root", ".");
const install = new Installation({ models: [ocrModel(4)], tenants: [{ name: "bench" }] });
onInterrupt(() => install.teardown(["ocr"]));
try {
  await install.seedTenant();
  const roles = {
    collector: await startRoleOf(install, root, "collector"),
    worker: await startRoleOf(install, root, "worker", {
      env: { TURNPIKE_MODEL: "ocr", TURNPIKE_WORKER_ID: "bench-idle" },
    }),
    gateway: await startRoleOf(install, root, "gateway"),
  };
  await new Promise((r) => setTimeout(r, 3000));
  const before = Object.fromEntries(Object.entries(roles).map(([k, r]) => [k, sample(r.handle.pid!)]));
  await new Promise((r) => setTimeout(r, seconds * 1000));
  for (const [role, r] of Object.entries(roles)) {
    const after = sample(r.handle.pid!);
    const was = before[role]!;
    const threads = Object.entries(after.threads)
      .map(([name, n]) => [name, n - (was.threads[name] ?? 0)] as const)
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([name, n]) => `${name} ${(n / seconds).toFixed(1)}`)
      .join(", ");
    say(
      `[${root}] ${role}: ${((after.switches - was.switches) / seconds).toFixed(1)} wake-ups/s, ` +
        `${(((after.ticks - was.ticks) * 10) / seconds).toFixed(1)} CPU ms/s idle; by thread: ${threads}`,
    );
  }
} finally {
  await install.teardown(["ocr"]);
}

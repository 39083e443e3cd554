/**
 * Who had the CPUs when: samples every process's and thread's CPU time (/proc/<pid>/task/<tid>/stat)
 * every `--every` ms for `--seconds` and writes one JSON line per sample to `--out`, CPU ms used
 * since the previous sample by each process name (threads as `name/thread`). Run beside a traced
 * load (bench/stage-report.ts finds the slow windows); `--show=<epoch ms>,<epoch ms>` then prints
 * the busiest names of the samples between those moments.
 *
 *   npx tsx bench/cpu-timeline.ts --out=/tmp/cpu.jsonl --seconds=20 [--every=20]
 *   npx tsx bench/cpu-timeline.ts --out=/tmp/cpu.jsonl --show=1764892873000,1764892873400
 *
 * Measurements only; nothing asserts.
 */
import { appendFileSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { arg } from "./lib/compare-sides.js";

const TICKS_PER_MS = 100 / 1000; // USER_HZ = 100 on Linux

/** CPU ticks so far of each thread, keyed by "pid/tid", with its process and thread names. */
function sample(): Map<string, { name: string; ticks: number }> {
  const out = new Map<string, { name: string; ticks: number }>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    let processName: string;
    let tids: string[];
    try {
      processName = readFileSync(`/proc/${pid}/comm`, "utf8").trim();
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue;
    }
    for (const tid of tids) {
      try {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        const close = stat.lastIndexOf(")");
        const thread = stat.slice(stat.indexOf("(") + 1, close);
        const fields = stat.slice(close + 2).split(" ");
        const ticks = Number(fields[11]) + Number(fields[12]);
        const name = thread === processName ? processName : `${processName}/${thread}`;
        out.set(`${pid}/${tid}`, { name, ticks });
      } catch {
        // gone
      }
    }
  }
  return out;
}

async function record(out: string, seconds: number, everyMs: number): Promise<void> {
  writeFileSync(out, "");
  let previous = sample();
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    await new Promise((resolve) => setTimeout(resolve, everyMs));
    const now = sample();
    const used: Record<string, number> = {};
    for (const [key, { name, ticks }] of now) {
      const delta = ticks - (previous.get(key)?.ticks ?? ticks);
      if (delta > 0) used[name] = (used[name] ?? 0) + delta / TICKS_PER_MS;
    }
    appendFileSync(out, `${JSON.stringify({ at: Date.now(), used })}\n`);
    previous = now;
  }
}

function show(out: string, from: number, to: number): void {
  const lines = readFileSync(out, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { at: number; used: Record<string, number> });
  for (const { at, used } of lines.filter((l) => l.at >= from && l.at <= to)) {
    const top = Object.entries(used)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 8)
      .map(([name, ms]) => `${name} ${ms.toFixed(0)}`)
      .join(", ");
    console.log(`${new Date(at).toISOString().slice(11, 23)} ${top}`);
  }
}

const out = arg("out", "/tmp/cpu-timeline.jsonl");
const range = arg("show", "");
if (range) {
  const [from, to] = range.split(",").map(Number);
  show(out, from!, to!);
} else await record(out, Number(arg("seconds", "20")), Number(arg("every", "20")));

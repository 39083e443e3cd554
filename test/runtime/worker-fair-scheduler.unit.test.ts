import { describe, expect, it } from "vitest";
import { FairScheduler, type FairClass } from "../../runtime/worker/fair-scheduler.js";

const tenant = (name: string, priority = 5, weight = 1): FairClass => ({ tenant: name, priority, weight });

/** Starts `count` requests while every tenant keeps `depth` waiting (a backlogged model). */
function backlogged(classes: FairClass[], count: number, depth = 50): string[] {
  const s = new FairScheduler<string>();
  const waiting = new Map(classes.map((c) => [c.tenant, 0]));
  const refill = () => {
    for (const c of classes) {
      while (waiting.get(c.tenant)! < depth) {
        s.push(c, c.tenant);
        waiting.set(c.tenant, waiting.get(c.tenant)! + 1);
      }
    }
  };
  const started: string[] = [];
  for (let i = 0; i < count; i++) {
    refill();
    const next = s.next()!;
    waiting.set(next, waiting.get(next)! - 1);
    started.push(next);
  }
  return started;
}

const countOf = (list: string[], name: string) => list.filter((x) => x === name).length;

describe("FairScheduler", () => {
  it("gives backlogged tenants of one priority equal starts, whatever they submitted", () => {
    const s = new FairScheduler<string>();
    // "flood" has 100 waiting, "trickle" 10: while both wait, they alternate.
    for (let i = 0; i < 100; i++) s.push(tenant("flood"), `f${i}`);
    for (let i = 0; i < 10; i++) s.push(tenant("trickle"), `t${i}`);
    const first20 = Array.from({ length: 20 }, () => s.next()!);
    expect(first20.filter((x) => x.startsWith("t"))).toHaveLength(10);
    // Each tenant keeps its own arrival order.
    expect(first20.filter((x) => x.startsWith("t"))).toEqual(Array.from({ length: 10 }, (_, i) => `t${i}`));
    expect(s.size).toBe(90);
  });

  it("shares in proportion to weights, counted in cost", () => {
    const started = backlogged([tenant("a", 5, 3), tenant("b", 5, 1)], 400);
    expect(countOf(started, "a")).toBe(300);
    const s = new FairScheduler<string>();
    for (let i = 0; i < 20; i++) s.push(tenant("big"), "big", 4);
    for (let i = 0; i < 80; i++) s.push(tenant("small"), "small", 1);
    const costs = Array.from({ length: 50 }, () => s.next()!);
    // 10 starts of cost 4 (40) against 40 of cost 1 (40): equal cost, within one request.
    expect(Math.abs(countOf(costs, "big") * 4 - countOf(costs, "small"))).toBeLessThanOrEqual(4);
  });

  it("gives idle tenants no credit", () => {
    const s = new FairScheduler<string>();
    for (let i = 0; i < 50; i++) s.push(tenant("busy"), "busy");
    for (let i = 0; i < 40; i++) s.next();
    for (let i = 0; i < 50; i++) s.push(tenant("late"), "late");
    const next20 = Array.from({ length: 20 }, () => s.next()!);
    expect(countOf(next20, "late")).toBe(10);
  });

  it("starts high before normal and low, with a floor: waiting low work gets one start in every 10", () => {
    const started = backlogged([tenant("high", 9), tenant("low", 1)], 1000);
    expect(countOf(started, "low")).toBe(100);
    for (let i = 0; i + 10 <= started.length; i++) {
      expect(countOf(started.slice(i, i + 10), "low")).toBeGreaterThanOrEqual(1);
    }
    // Two priorities due at once: the lower goes first, the other right after (one in every 11).
    const three = backlogged([tenant("h", 9), tenant("n", 5), tenant("l", 1)], 1100);
    for (let i = 0; i + 11 <= three.length; i++) {
      expect(countOf(three.slice(i, i + 11), "n")).toBeGreaterThanOrEqual(1);
      expect(countOf(three.slice(i, i + 11), "l")).toBeGreaterThanOrEqual(1);
    }
    expect(countOf(three, "h")).toBeGreaterThan(800);
  });

  it("starts a high request next when it arrives during a low flood", () => {
    const s = new FairScheduler<string>();
    for (let i = 0; i < 100; i++) s.push(tenant("low", 1), "low");
    for (let i = 0; i < 30; i++) s.next();
    s.push(tenant("high", 9), "high");
    expect(s.next()).toBe("high");
  });

  it("asks whether the next start's priority may start before taking it, floor turns included", () => {
    const s = new FairScheduler<string>();
    expect(s.next(() => true)).toBeUndefined();
    for (let i = 0; i < 40; i++) s.push(tenant("low", 1), "low");
    for (let i = 0; i < 40; i++) s.push(tenant("high", 9), "high");
    const seen: string[] = [];
    for (let i = 0; i < 30; i++) {
      const asked: number[] = [];
      const answer = (yes: boolean) => (priority: number) => asked.push(priority) > 0 && yes;
      // A refusal takes nothing and changes nothing: the same priority is asked for again.
      expect(s.next(answer(false))).toBeUndefined();
      expect(s.size).toBe(80 - i);
      const started = s.next(answer(true))!;
      expect(asked[1]).toBe(asked[0]);
      expect(asked[0]).toBe(started === "high" ? 9 : 1);
      seen.push(started);
    }
    // The floor's low starts were told too: 3 in 30, at the 10th, 20th and 30th.
    expect(seen.flatMap((x, i) => (x === "low" ? [i] : []))).toEqual([9, 19, 29]);
  });

  it("drains everything, each tenant in order", () => {
    const s = new FairScheduler<string>();
    s.push(tenant("a"), "a1");
    s.push(tenant("b", 1), "b1");
    s.push(tenant("a"), "a2");
    expect(s.drain()).toEqual(["a1", "a2", "b1"]);
    expect(s.next()).toBeUndefined();
  });
});

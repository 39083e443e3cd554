/**
 * The status settle window (operator/inference-model/status-settle.ts): a new rollout's first
 * "Progressing" status is held while the window is open, never a problem, and the window belongs
 * to one generation. The apiserver side (one status write per model) is in watch-cache.test.ts.
 */
import { describe, expect, it } from "vitest";
import {
  settleDecision,
  STATUS_SETTLE_MS,
  StatusSettle,
} from "../../operator/inference-model/status-settle.js";

describe("the status settle window", () => {
  it("holds a rollout's status only while open, and never a problem or a finished rollout", () => {
    expect(settleDecision({ windowLeftMs: 500, progressing: true, problem: false })).toBe("hold");
    expect(settleDecision({ windowLeftMs: 0, progressing: true, problem: false })).toBe("write");
    expect(settleDecision({ windowLeftMs: 500, progressing: false, problem: false })).toBe("write");
    expect(settleDecision({ windowLeftMs: 500, progressing: true, problem: true })).toBe("write");
  });

  it("belongs to one generation, and lets the closing timer's reconcile be status-only", () => {
    const settle = new StatusSettle<{ depth: number }>();
    settle.open("ns/m", 2, { depth: 7 }, 1_000);
    expect(settle.left("ns/m", 2, 1_500)).toBe(STATUS_SETTLE_MS - 500);
    expect(settle.left("ns/m", 3, 1_500)).toBe(0);
    expect(settle.seen("ns/m", 2)).toEqual({ depth: 7 });
    expect(settle.seen("ns/m", 3)).toBeUndefined();
    expect(settle.left("ns/m", 2, 1_000 + STATUS_SETTLE_MS)).toBe(0);
    expect(settle.settling("ns/m", 2, 1_000 + STATUS_SETTLE_MS)).toBe(true);
    expect(settle.settling("ns/m", 3, 1_500)).toBe(false);
    expect(settle.settling("other/m", 2, 1_500)).toBe(false);
    settle.close("ns/m");
    expect(settle.settling("ns/m", 2, 1_500)).toBe(false);
  });
});

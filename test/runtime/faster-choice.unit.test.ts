// The choice between two ways of running the model (runtime/worker/engines/onnx/faster-choice.ts),
// here a model's spinning and non-spinning session for single lines, fed run times as a host
// would give them.
import { describe, expect, it } from "vitest";
import { FasterChoice } from "../../runtime/worker/engines/onnx/faster-choice.js";

type SpinSession = "spinning" | "quiet";
type SpinChoice = FasterChoice<SpinSession>;
const spinChoice = (probeEvery: number, maxProbeEvery?: number) =>
  new FasterChoice<SpinSession>(["spinning", "quiet"], probeEvery, 0.2, maxProbeEvery);

/** Runs `count` single lines on a host where each session takes `ms[session]`; returns the picks. */
function serve(choice: SpinChoice, count: number, ms: Record<SpinSession, number>): SpinSession[] {
  const picks: SpinSession[] = [];
  for (let i = 0; i < count; i++) {
    const which = choice.next();
    picks.push(which);
    choice.record(which, ms[which], 46_080);
  }
  return picks;
}
const share = (picks: SpinSession[], session: SpinSession) =>
  picks.filter((p) => p === session).length / picks.length;

describe("FasterChoice", () => {
  it("times both sessions first, not counting each one's first run", () => {
    const choice = spinChoice(8);
    expect(serve(choice, 4, { spinning: 14, quiet: 18 })).toEqual(["spinning", "spinning", "quiet", "quiet"]);
    expect(choice.averages().spinning).toBeCloseTo(14 / 46_080);
  });

  it("probes every probeEvery runs by default, however much slower the other session is", () => {
    const choice = spinChoice(8);
    const picks = serve(choice, 4 + 64, { spinning: 14, quiet: 40 }).slice(4);
    expect(share(picks, "quiet")).toBe(1 / 8);
    expect(choice.gap).toBe(8);
  });

  it("probes a clearly slower session less and less often, down to one run in maxProbeEvery", () => {
    const choice = spinChoice(8, 64);
    const picks = serve(choice, 4 + 8 + 16 + 32 + 64 + 64, { spinning: 14, quiet: 18 }).slice(4);
    const probes = picks.flatMap((p, i) => (p === "quiet" ? [i] : []));
    expect(probes).toEqual([7, 23, 55, 119, 183]);
    expect(choice.gap).toBe(64);
  });

  it("keeps probing every probeEvery runs while the other session comes within 25%", () => {
    const choice = spinChoice(8, 64);
    const picks = serve(choice, 4 + 64, { spinning: 14, quiet: 15 }).slice(4);
    expect(share(picks, "quiet")).toBe(1 / 8);
    expect(choice.gap).toBe(8);
  });

  it("lets one slow probe lengthen the gap once, not for good", () => {
    const choice = spinChoice(8, 64);
    serve(choice, 4, { spinning: 14, quiet: 15 });
    // The eighth run probes the quiet session while something else slows the host.
    serve(choice, 8, { spinning: 14, quiet: 40 });
    expect(choice.gap).toBe(16);
    serve(choice, 16, { spinning: 14, quiet: 15 });
    expect(choice.gap).toBe(8);
  });

  it("moves to the non-spinning session when the cores get busy, and back when they are idle again", () => {
    const choice = spinChoice(8, 64);
    serve(choice, 20, { spinning: 14, quiet: 18 });
    // The chosen session is timed on every run: it loses the choice at once.
    const busy = serve(choice, 80, { spinning: 69, quiet: 31 });
    expect(busy.slice(0, 3)).toContain("quiet");
    expect(share(busy.slice(-40), "quiet")).toBeGreaterThanOrEqual(7 / 8);
    expect(choice.gap).toBeGreaterThan(8);
    // The other one's getting faster is found by a probe: within the longest gap, then a few more
    // probes at the shortest one, since each comes in faster.
    const idle = serve(choice, 160, { spinning: 14, quiet: 18 });
    expect(idle.slice(0, 64 + 4 * 8)).toContain("spinning");
    expect(share(idle.slice(-40), "spinning")).toBeGreaterThanOrEqual(7 / 8);
  });

  it("compares runs of different sizes per input element", () => {
    const choice = spinChoice(8);
    choice.record("spinning", 100, 1);
    choice.record("spinning", 20, 2_000); // 0.01 ms per element
    choice.record("quiet", 100, 1);
    choice.record("quiet", 15, 1_000); // 0.015 ms per element
    expect(choice.next()).toBe("spinning");
  });

  it("refuses settings that would never probe", () => {
    expect(() => spinChoice(1)).toThrow(/bad FasterChoice settings/);
    expect(() => spinChoice(8, 4)).toThrow(/bad FasterChoice settings/);
    expect(() => new FasterChoice(["batch", "batch"])).toThrow(/bad FasterChoice settings/);
  });
});

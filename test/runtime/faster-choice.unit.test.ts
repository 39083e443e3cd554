// The choice between two ways of running the model (runtime/worker/engines/onnx/faster-choice.ts),
// here a model's spinning and non-spinning session for single lines, fed run times as a host
// would give them.
import { describe, expect, it } from "vitest";
import { FasterChoice } from "../../runtime/worker/engines/onnx/faster-choice.js";

type SpinSession = "spinning" | "quiet";
type SpinChoice = FasterChoice<SpinSession>;
const spinChoice = (probeEvery: number) => new FasterChoice<SpinSession>(["spinning", "quiet"], probeEvery);

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

  it("keeps the spinning session on idle cores, probing the other one now and then", () => {
    const choice = spinChoice(8);
    const picks = serve(choice, 4 + 64, { spinning: 14, quiet: 18 }).slice(4);
    expect(share(picks, "quiet")).toBe(1 / 8);
  });

  it("moves to the non-spinning session when the cores get busy, and back when they are idle again", () => {
    const choice = spinChoice(8);
    serve(choice, 20, { spinning: 14, quiet: 18 });
    const busy = serve(choice, 80, { spinning: 69, quiet: 31 });
    expect(share(busy.slice(-40), "quiet")).toBe(7 / 8);
    const idle = serve(choice, 80, { spinning: 14, quiet: 18 });
    expect(share(idle.slice(-40), "spinning")).toBe(7 / 8);
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
    expect(() => new FasterChoice(["batch", "batch"])).toThrow(/bad FasterChoice settings/);
  });
});

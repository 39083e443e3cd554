// The quota's window names, asked for in any order of days (windowsAt keeps the last day's names).
import { describe, expect, it } from "vitest";
import { windowsAt } from "../../runtime/shared/quota/index.js";

describe("windowsAt", () => {
  it("names each moment's own month, day and minute, whichever day was asked before", () => {
    const lastOfJanuary = Date.UTC(2025, 0, 31, 23, 59, 59, 999);
    const firstOfFebruary = lastOfJanuary + 1;
    const moments = [
      lastOfJanuary,
      firstOfFebruary,
      lastOfJanuary,
      Date.UTC(2024, 1, 29, 12),
      firstOfFebruary,
    ];
    const names = moments.map((t) => {
      const w = windowsAt(t);
      return [w.month, w.day, w.minute, new Date(w.endsAt.month).toISOString().slice(0, 10)];
    });
    expect(names).toEqual([
      ["2025-01", "2025-01-31", Math.floor(lastOfJanuary / 60_000), "2025-02-01"],
      ["2025-02", "2025-02-01", Math.floor(firstOfFebruary / 60_000), "2025-03-01"],
      ["2025-01", "2025-01-31", Math.floor(lastOfJanuary / 60_000), "2025-02-01"],
      ["2024-02", "2024-02-29", Math.floor(Date.UTC(2024, 1, 29, 12) / 60_000), "2024-03-01"],
      ["2025-02", "2025-02-01", Math.floor(firstOfFebruary / 60_000), "2025-03-01"],
    ]);
    expect(windowsAt(lastOfJanuary).secondsToMonthEnd).toBe(1);
    expect(windowsAt(firstOfFebruary).secondsToDayEnd).toBe(86_400);
  });
});

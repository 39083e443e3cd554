/**
 * The runtime's event-loop delay monitor samples every EVENT_LOOP_SAMPLE_MS (not prom-client's
 * 10 ms, which woke every idle role 100 times a second): a block of the loop is still seen, the
 * reported figure is the interval between samples, and the dashboard takes that interval off.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createMetrics, EVENT_LOOP_SAMPLE_MS } from "../../runtime/shared/metrics.js";
import { repoRoot } from "../harness/kube.js";

const valueOf = (text: string, name: string) => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  if (!line) throw new Error(`${name} is not exported`);
  return Number(line.split(" ").pop());
};

describe("event-loop delay metrics", () => {
  it("sample at EVENT_LOOP_SAMPLE_MS and still see a block of the loop longer than that", async () => {
    const { registry } = createMetrics("test");
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    await registry.metrics(); // a fresh window (reading resets the monitor)
    // The first sample after a reset only starts the monitor's clock.
    await sleep(1.5 * EVENT_LOOP_SAMPLE_MS);
    const blockMs = 3 * EVENT_LOOP_SAMPLE_MS;
    const until = performance.now() + blockMs;
    while (performance.now() < until); // the loop is blocked: a sample due now waits for it
    await sleep(2.5 * EVENT_LOOP_SAMPLE_MS);
    const text = await registry.metrics();
    // The interval between samples is never shorter than the sampling interval (1 ms of timer slack).
    expect(valueOf(text, "nodejs_eventloop_lag_min_seconds")).toBeGreaterThanOrEqual(
      (EVENT_LOOP_SAMPLE_MS - 1) / 1000,
    );
    expect(valueOf(text, "nodejs_eventloop_lag_max_seconds")).toBeGreaterThanOrEqual(blockMs / 1000);
  });

  it("are shown on the dashboard less the sampling interval", () => {
    const dashboard = readFileSync(join(repoRoot, "config/observability/grafana-dashboard.json"), "utf8");
    const expr = /"expr": "([^"\n]*nodejs_eventloop_lag_p99_seconds[^\n]*)",/.exec(dashboard)?.[1] ?? "";
    expect(expr).toMatch(new RegExp(`\\) - ${EVENT_LOOP_SAMPLE_MS / 1000}$`));
  });
});

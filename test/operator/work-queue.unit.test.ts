/** The reconcilers' work queue: order of keys, urgent keys ahead of those waiting. */
import { describe, expect, it } from "vitest";
import { WorkQueue } from "../../operator/shared/work-queue.js";

function recordingQueue() {
  const order: string[] = [];
  let release: () => void = () => undefined;
  const first = new Promise<void>((resolve) => (release = resolve));
  const queue = new WorkQueue(
    async (key) => {
      order.push(key);
      if (key === "a") await first;
    },
    () => undefined,
    { concurrency: 1 },
  );
  return { queue, order, release: () => release() };
}

describe("WorkQueue", () => {
  it("runs keys in the order they were added, duplicates collapsed", async () => {
    const { queue, order, release } = recordingQueue();
    for (const key of ["a", "b", "c", "b"]) queue.add(key);
    release();
    await queue.idle();
    expect(order).toEqual(["a", "b", "c"]);
  });

  it("runs an urgent key ahead of those waiting, moving it up if it waits already", async () => {
    const { queue, order, release } = recordingQueue();
    for (const key of ["a", "b", "c", "d"]) queue.add(key);
    queue.add("d", true);
    queue.add("e", true);
    release();
    await queue.idle();
    expect(order).toEqual(["a", "e", "d", "b", "c"]);
  });
});

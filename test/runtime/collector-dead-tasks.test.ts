// A task RabbitMQ gives up on (its model queue's delivery limit: workers kept crashing on it) still
// ends with one final record, failed with `dead_lettered`, and its reservation is released. The DLQ
// keeps its copy for people; dead letters the collector cannot record (here: junk that died in the
// results queue) are acknowledged from the collector's copy and stay in the DLQ.
import type { GetMessage } from "amqplib";
import { afterEach, describe, expect, it } from "vitest";
import { startCollector, type Collector } from "../../runtime/collector/collector.js";
import { declareModelQueue, DEFAULT_QUEUE_POLICY, publishJson } from "../../runtime/shared/amqp.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { collectorWorld, waitFor, type CollectorWorld } from "./helpers/collector-harness.js";
import { makeTask } from "./helpers/worker-fixtures.js";

let world: CollectorWorld | undefined;
let collector: Collector | undefined;

afterEach(async () => {
  await collector?.close();
  collector = undefined;
  if (world) await world.channel.deleteQueue(names(world.prefix).modelQueue("poison")).catch(() => undefined);
  await world?.cleanup();
  world = undefined;
});

describe("dead-lettered tasks", () => {
  it("get a failed record and give their reservation back; the DLQ keeps every dead letter", async () => {
    world = await collectorWorld("c-dead");
    const w = world;
    const n = names(w.prefix);
    await w.quota.writeTenant("acme", { tokensPerDay: 1_000 }, []);
    const queue = await declareModelQueue(w.channel, w.prefix, "poison", {
      ...DEFAULT_QUEUE_POLICY,
      deliveryLimit: 1,
    });
    const task = makeTask({ kind: "model", name: "poison" }, [{ step: "poison", model: "poison" }], [], {
      tenant: "acme",
      reservedTokens: 50,
      inputTokens: 5,
    });
    expect((await w.quota.reserve("acme", task.requestId, 50)).ok).toBe(true);
    collector = await startCollector({ env: w.env() });

    await publishJson(w.channel, queue, task, { messageId: task.requestId });
    // Two workers take it and give it back (as a crash does): past the delivery limit of 1,
    // RabbitMQ dead-letters it.
    for (let attempt = 0; attempt < 2; attempt++) {
      const message = await waitFor(
        `delivery ${attempt + 1}`,
        async () => (await w.channel.get(queue)) || undefined,
      );
      w.channel.nack(message as GetMessage, false, true);
    }
    // Junk that died in the results queue: nothing to record, it only stays in the DLQ.
    await new Promise<void>((resolve, reject) =>
      w.channel.publish(
        n.deadLetterExchange,
        "",
        Buffer.from("not a task"),
        { persistent: true, headers: { "x-first-death-queue": n.resultsQueue } },
        (error: unknown) => (error ? reject(error as Error) : resolve()),
      ),
    );

    const record = await waitFor("the failed record", () => w.records.get(task.requestId), 30_000);
    expect(record).toMatchObject({ status: "failed", chargedTokens: 0, tenant: "acme", target: "poison" });
    expect(record.error?.code).toBe("dead_lettered");
    expect(record.error?.message).toContain(queue);
    await waitFor("the reservation given back", async () => (await w.quota.usage("acme")).inFlight === 0);
    expect(await w.quota.usage("acme")).toMatchObject({ tokensToday: 0, inFlight: 0 });
    await waitFor("both dead letters kept in the DLQ, the collector's copies consumed", async () => {
      const [dlq, copies] = await Promise.all([
        w.channel.checkQueue(n.deadLetterQueue),
        w.channel.checkQueue(n.deadTaskQueue),
      ]);
      return dlq.messageCount === 2 && copies.messageCount === 0;
    });
    expect(await w.rowCount()).toBe(1);
    expect(w.noticesFor(task.requestId).map((notice) => notice.status)).toEqual(["failed"]);
  });
});

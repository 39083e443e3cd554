// The worker's MessageSettler on a real quorum queue: acks of one turn leave as one multiple-ack
// only when they cover every earlier delivery, a task finished while an earlier one still runs is
// acked alone at once (its prefetch slot frees), a nack in between never makes the broker refuse an
// ack (an unknown delivery tag would close the channel), and every message is settled exactly once.
import amqp, { type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logger } from "../../runtime/shared/logger.js";
import { createMetrics } from "../../runtime/shared/metrics.js";
import { MessageSettler } from "../../runtime/worker/message-settler.js";
import type { ServedModel } from "../../runtime/worker/segment-runner.js";
import { serviceUrls, uniqueName } from "../harness/services.js";

const base = uniqueName("settler");
const results = `${base}-out`;
const queues: string[] = [];
let connection: amqp.ChannelModel;
let admin: amqp.Channel;

beforeAll(async () => {
  connection = await amqp.connect(serviceUrls().amqpUrl);
  admin = await connection.createChannel();
  await admin.assertQueue(results, { durable: true, arguments: { "x-queue-type": "quorum" } });
});

afterAll(async () => {
  for (const queue of queues) await admin.deleteQueue(queue).catch(() => undefined);
  await admin.deleteQueue(results).catch(() => undefined);
  await connection.close();
});

/** Receives `n` messages of a new queue on a fresh confirm channel, each counted by a new settler. */
async function receive(n: number) {
  const queue = `${base}-${queues.length}`;
  queues.push(queue);
  await admin.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  for (let i = 0; i < n; i++) admin.sendToQueue(queue, Buffer.from(String(i)), { persistent: true });
  const channel: ConfirmChannel = await connection.createConfirmChannel();
  const closed: unknown[] = [];
  channel.on("error", (error) => closed.push(error));
  channel.on("close", () => closed.push("closed"));
  const model = { runner: { config: { name: "m", deliveryLimit: 5 } } } as unknown as ServedModel;
  const settler = new MessageSettler({
    channel,
    prefix: queue,
    model,
    metrics: createMetrics("worker"),
    log: logger("settler-test"),
  });
  const messages: ConsumeMessage[] = [];
  await channel.prefetch(n);
  await new Promise<void>((resolve) => {
    void channel.consume(queue, (message) => {
      if (!message) return;
      settler.received(message);
      messages.push(message);
      if (messages.length === n) resolve();
    });
  });
  return { queue, channel, settler, messages, closed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const depth = async (queue: string) => (await admin.checkQueue(queue)).messageCount;

/** Waits (bounded) until `messages` holds `n` deliveries. */
async function delivered(messages: ConsumeMessage[], n: number): Promise<number> {
  for (let waited = 0; messages.length < n && waited < 100; waited++) await sleep(50);
  return messages.length;
}

describe("MessageSettler acks", () => {
  it("settles out of order, around a nack, with the channel staying open", async () => {
    const { queue, channel, settler, messages, closed } = await receive(6);
    const done = (i: number) => settler.publishThenAck(messages[i]!, results, { i }, `r${i}`);
    // 2 and 3 finish while 0 and 1 are still under way: acked alone, at once.
    done(2);
    done(3);
    await settler.idle();
    // 1 is returned (and comes back as delivery 6); then 0, 4 and 5 finish in one turn.
    settler.requeue(messages[1]!, new Error("try again"));
    done(0);
    done(4);
    done(5);
    await settler.idle();
    expect(await delivered(messages, 7)).toBe(7);
    expect(messages[6]!.content.toString()).toBe("1");
    done(6);
    await settler.idle();
    expect(settler.unacked).toBe(0);
    await channel.close();
    expect(closed).toEqual(["closed"]);
    // Nothing is left: every message was acked once (a channel closed by a refused ack would
    // have returned them).
    expect(await depth(queue)).toBe(0);
  });

  it("frees the prefetch slots of tasks finished while an earlier one still runs", async () => {
    const { queue, channel, settler, messages, closed } = await receive(5);
    // 1..4 finish while 0 still runs: acked now, so the broker may deliver 4 more (prefetch 5).
    for (let i = 1; i < 5; i++) settler.publishThenAck(messages[i]!, results, { i }, `r${i}`);
    await settler.idle();
    for (let i = 0; i < 4; i++) admin.sendToQueue(queue, Buffer.from("more"), { persistent: true });
    expect(await delivered(messages, 9)).toBe(9);
    for (const message of [messages[0]!, ...messages.slice(5)]) {
      settler.publishThenAck(message, results, {}, "r");
    }
    await settler.idle();
    expect(settler.unacked).toBe(0);
    await channel.close();
    expect(closed).toEqual(["closed"]);
    expect(await depth(queue)).toBe(0);
  });
});

/**
 * What the results queue costs RabbitMQ per result, by queue type, side by side: a durable quorum
 * queue against a durable classic queue (version 2 index). Each result is published the way the
 * worker does (persistent, publisher confirms, a BCC header naming a gateway's exclusive queue,
 * batches of 32 published in one turn), consumed by a gateway-like noAck consumer on that queue
 * and by a collector-like consumer on the results queue (prefetch 512, one multiple-ack per batch
 * of up to 256). Types alternate in rounds so each meets the same moment of a shared machine.
 *
 *   npx tsx bench/results-queue-compare.ts [--messages=20000] [--rounds=3] [--types=quorum,classic,quorum-batched,stream] [--per-message=21]
 *
 * The broker's CPU counts every beam.smp process, so others' work on it shows in both columns
 * alike. Measurements only; nothing asserts.
 */
import amqp, { type ConfirmChannel, type ConsumeMessage } from "amqplib";
import { arg } from "./lib/compare-sides.js";
import { say, services, uniqueName } from "./lib/env.js";
import { cpuMs, pidsOf } from "./lib/processes.js";
import { round } from "./lib/stats.js";

const ARGUMENTS: Record<string, Record<string, unknown>> = {
  quorum: { "x-queue-type": "quorum", "x-delivery-limit": 20 },
  classic: { "x-queue-type": "classic", "x-queue-version": 2 },
  // One message carries a whole worker batch (--per-message results), still on a quorum queue.
  "quorum-batched": { "x-queue-type": "quorum", "x-delivery-limit": 20 },
  // Read from its start; over AMQP 0.9.1 the ack only returns credit (no redelivery after a crash).
  stream: { "x-queue-type": "stream" },
};
// Results per result-batch message: the echo ceiling's median worker batch is ~21.
const PER_MESSAGE: Record<string, number> = { "quorum-batched": Number(arg("per-message", "21")) };

const brokerMs = () => pidsOf("beam.smp").reduce((sum, pid) => sum + cpuMs(pid), 0);

async function oneRun(type: string, messages: number): Promise<{ cpuPerMsg: number; perSecond: number }> {
  const connection = await amqp.connect(services().amqpUrl, { noDelay: true });
  try {
    const channel: ConfirmChannel = await connection.createConfirmChannel();
    const results = uniqueName(`bench-results-${type}`);
    await channel.assertQueue(results, { durable: true, arguments: ARGUMENTS[type] });
    const reply = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    const perMessage = PER_MESSAGE[type] ?? 1;
    const body = Buffer.alloc(420 * perMessage, 120);
    let replies = 0;
    let recorded = 0;
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    const check = () => replies >= messages && recorded >= messages && done();
    await channel.consume(reply.queue, () => ((replies += perMessage), check()), { noAck: true });
    const collector = await connection.createConfirmChannel();
    await collector.prefetch(512, false);
    let batch: ConsumeMessage[] = [];
    const from = type === "stream" ? { arguments: { "x-stream-offset": "first" } } : {};
    await collector.consume(
      results,
      (msg) => {
        if (!msg) return;
        batch.push(msg);
        if (batch.length === 1)
          setTimeout(() => {
            const last = batch.at(-1)!;
            recorded += batch.length * perMessage;
            batch = [];
            try {
              collector.ack(last, true);
            } catch {
              // the run is over and its connection closed (a stream keeps delivering to the end)
            }
            check();
          }, 5);
      },
      from,
    );
    const cpuBefore = brokerMs();
    const started = performance.now();
    // A window of 32 results (a worker batch) is published in one turn and confirmed together.
    const window = Math.max(perMessage, 32);
    for (let sent = 0; sent < messages; sent += window) {
      const confirms: Promise<void>[] = [];
      for (let i = sent; i < Math.min(messages, sent + window); i += perMessage)
        confirms.push(
          new Promise((resolve, reject) =>
            channel.sendToQueue(
              results,
              body,
              { persistent: true, mandatory: true, messageId: String(i), headers: { BCC: [reply.queue] } },
              (error: unknown) => (error ? reject(error as Error) : resolve()),
            ),
          ),
        );
      await Promise.all(confirms);
    }
    await finished;
    const seconds = (performance.now() - started) / 1000;
    const cpu = brokerMs() - cpuBefore;
    await channel.deleteQueue(results);
    return { cpuPerMsg: cpu / messages, perSecond: messages / seconds };
  } finally {
    await connection.close().catch(() => undefined);
  }
}

const messages = Number(arg("messages", "20000"));
const rounds = Number(arg("rounds", "3"));
const types = arg("types", "quorum,classic").split(",");
for (let r = 1; r <= rounds; r++) {
  for (const type of r % 2 ? types : [...types].reverse()) {
    const { cpuPerMsg, perSecond } = await oneRun(type, messages);
    say(
      `[${type}] round ${r}: ${messages} results, broker CPU ${round(cpuPerMsg * 1000, 1)} us/result, ${Math.round(perSecond)} results/s (publish 32 at a time, confirmed)`,
    );
  }
}

/**
 * The broker's own share of a synchronous request's latency: RabbitMQ's publish-to-delivery time at
 * a paced rate, with nothing of Turnpike around it. Two kinds of stream, each a process of its own
 * (publisher and consumers on separate connections, as the gateway, the worker and the collector
 * are):
 *
 * - `task`: persistent messages with confirms to a quorum queue (the model's queue), consumed with
 *   prefetch 64 and acked at once (the worker);
 * - `result`: one persistent publish with confirms to a quorum queue (the results queue) that a BCC
 *   header also routes to an exclusive, non-durable classic queue (the answering gateway's), as the
 *   worker publishes a result; the gateway-like consumer reads that one without acks, a
 *   collector-like consumer reads the results queue with prefetch 512 and acks.
 *
 * The scenarios run the task stream alone, then both side by side at the same rate, as the echo
 * model's synchronous path loads the broker. The broker's hops in that path are the task's and the
 * reply's.
 *
 *   npx tsx bench/broker-latency.ts [--rate=1300] [--seconds=6] [--rounds=2] [--bytes=600] [--result-bytes=600]
 *
 * (`--bytes` sizes the task messages, `--result-bytes` the results; e.g. `--rate=40 --bytes=184400
 * --result-bytes=600` for the OCR model's binary tensor at one connection.)
 *
 * What it is for: issue 15 asks for p50 <= 5 ms and p99 <= 20 ms end to end at half the echo
 * ceiling; this tells how much of that the broker's two hops take on this host. Measurements only.
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import amqp, { type Channel, type ConsumeMessage } from "amqplib";
import { arg } from "./lib/compare-sides.js";
import { machine, say, services, uniqueName } from "./lib/env.js";
import { percentile, round } from "./lib/stats.js";
import { renderTable } from "./lib/table.js";

type StreamKind = "task" | "result";
/** Publish-to-delivery times (ms) by the queue they were read from. */
type Latencies = Record<string, number[]>;

const SCENARIOS: { name: string; streams: StreamKind[] }[] = [
  { name: "task stream alone", streams: ["task"] },
  { name: "task and result streams", streams: ["task", "result"] },
];

const sentAt = (message: ConsumeMessage) => Number(message.properties.headers?.t);

/** Collects each message's latency on `channel`, acking unless `noAck`. */
async function collect(channel: Channel, queue: string, into: number[], noAck: boolean): Promise<void> {
  await channel.consume(
    queue,
    (message) => {
      if (!message) return;
      into.push(performance.now() - sentAt(message));
      if (!noAck) channel.ack(message);
    },
    { noAck },
  );
}

/** One stream, in this process: paced persistent publishes with confirms; latencies to stdout as JSON. */
async function stream(kind: StreamKind, rate: number, seconds: number, bytes: number): Promise<void> {
  const url = services().amqpUrl;
  const publishing = await amqp.connect(url, { noDelay: true });
  const consuming = await amqp.connect(url, { noDelay: true });
  const publisher = await publishing.createConfirmChannel();
  const consumer = await consuming.createChannel();
  const latencies: Latencies = {};
  const queue = uniqueName(`bench-latency-${kind}`);
  await publisher.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  await consumer.prefetch(kind === "task" ? 64 : 512);
  await collect(consumer, queue, (latencies[kind === "task" ? "model queue" : "results queue"] = []), false);
  let reply: string | undefined;
  // The answering gateway's connection, for the result stream only.
  const replying = kind === "result" ? await amqp.connect(url, { noDelay: true }) : undefined;
  if (replying) {
    const gateway = await replying.createChannel();
    reply = (await gateway.assertQueue("", { exclusive: true, durable: false, autoDelete: true })).queue;
    await collect(gateway, reply, (latencies["reply queue"] = []), true);
  }
  const body = Buffer.alloc(bytes, 1);
  const total = Math.round(rate * seconds);
  const start = performance.now();
  let sent = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) / 1000) * rate));
      for (; sent < due; sent++) {
        publisher.publish("", queue, body, {
          persistent: true,
          headers: { t: String(performance.now()) },
          ...(reply ? { BCC: [reply] } : {}),
        });
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await publisher.waitForConfirms();
  const deadline = Date.now() + 5_000;
  const done = () => Object.values(latencies).every((l) => l.length >= total);
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  await consumer.close();
  await publisher.deleteQueue(queue);
  await Promise.all([publishing.close(), consuming.close(), replying?.close()]);
  process.stdout.write(JSON.stringify({ sent: total, latencies }));
}

/** Runs one stream as a child process and returns its latencies. */
function child(kind: StreamKind, rate: number, seconds: number, bytes: number): Promise<Latencies> {
  return new Promise((resolve, reject) => {
    const options = [`--stream=${kind}`, `--rate=${rate}`, `--seconds=${seconds}`, `--bytes=${bytes}`];
    const proc = spawn(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...options], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    proc.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    proc.on("error", reject);
    proc.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`the ${kind} stream exited with ${code}`));
      const { sent, latencies } = JSON.parse(out) as { sent: number; latencies: Latencies };
      for (const [queue, values] of Object.entries(latencies)) {
        if (values.length !== sent) {
          return reject(new Error(`the ${kind} stream: ${values.length} of ${sent} read from the ${queue}`));
        }
      }
      resolve(latencies);
    });
  });
}

async function main(): Promise<void> {
  const rate = Number(arg("rate", "1300"));
  const seconds = Number(arg("seconds", "6"));
  const rounds = Number(arg("rounds", "2"));
  const bytes = Number(arg("bytes", "600"));
  const resultBytes = Number(arg("result-bytes", String(bytes)));
  const sizeOf = (kind: StreamKind) => (kind === "task" ? bytes : resultBytes);
  const only = arg("stream", "") as StreamKind | "";
  if (only) return stream(only, rate, seconds, bytes);

  const rows: (string | number)[][] = [];
  for (let r = 1; r <= rounds; r++) {
    for (const scenario of SCENARIOS) {
      say(`round ${r}: ${scenario.name}, each at ${rate}/s for ${seconds} s`);
      const runs = await Promise.all(
        scenario.streams.map((kind) => child(kind, rate, seconds, sizeOf(kind))),
      );
      for (const [queue, values] of runs.flatMap((latencies) => Object.entries(latencies))) {
        const sorted = values.sort((a, b) => a - b);
        const p = (q: number) => round(percentile(sorted, q), 2);
        rows.push([scenario.name, r, queue, p(50), p(90), p(99)]);
      }
    }
  }
  const m = machine();
  console.log(renderTable(["scenario", "round", "read from", "p50 ms", "p90 ms", "p99 ms"], rows, 3));
  console.log(
    `\npublish to delivery, each stream at ${rate}/s; persistent messages with confirms, tasks ${bytes} bytes, ` +
      `results ${resultBytes} bytes; ` +
      `${m.nproc} cores, load average ${m.loadAverage.join(" ")}`,
  );
}

await main();

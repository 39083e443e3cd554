/**
 * The task body of section 6's OCR line (FP32 [1,3,48,320]) as each checkout's task-body codec
 * writes it, side by side: its bytes, the CPU to encode it (gateway) and decode it (worker), and
 * what RabbitMQ does with it on a durable quorum queue at one message at a time (persistent, with
 * publisher confirms, as the gateway publishes): publish -> delivery latency and the broker's CPU
 * per message. Checkouts alternate in blocks, so each meets the same moment of a shared machine.
 *
 *   npx tsx bench/task-body-compare.ts --roots=/path/to/before,. [--messages=150] [--rounds=4]
 *
 * The broker's CPU counts every beam.smp process, so other work on it shows up in both columns
 * alike. Measurements only; nothing asserts.
 */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import amqp from "amqplib";
import { renderLinePng } from "../test/fixtures/text-line.js";
import type { InferenceTask } from "../runtime/shared/contracts/index.js";
import { decodeTensor, encodeTensor } from "../runtime/shared/tensors.js";
import { imageToTensor } from "../runtime/worker/processors/image-to-tensor.js";
import { arg, rootsArg } from "./lib/compare-sides.js";
import { BENCH_LINE, say, services, sleep } from "./lib/env.js";
import { cpuMs, pidsOf } from "./lib/processes.js";
import { round } from "./lib/stats.js";

interface Codec {
  encodeTaskBody(task: InferenceTask): { content: Buffer };
  decodeTaskBody(body: Buffer): unknown;
}

function ocrTask(): InferenceTask {
  const context = { dictionary: () => [], settings: {}, parameters: {} };
  const png = renderLinePng(BENCH_LINE);
  const [x] = imageToTensor.run(
    [{ name: "image", datatype: "BYTES", shape: [1], data: [new Uint8Array(png)] }],
    context,
  );
  return {
    requestId: "0b0e8a5e-8d7f-4a53-9d4b-7a3c2f1e0d9c",
    tenant: "bench",
    target: { kind: "model", name: "ocr" },
    route: [{ step: "ocr", model: "ocr" }],
    inputs: [encodeTensor({ ...x!, name: "x" }, { raw: true })],
    reservedTokens: 1,
    inputTokens: 1,
    outputTokens: 0,
    submittedAt: Date.now(),
    steps: [],
  };
}

/** CPU ms of one call of `fn`, the mean of `times` calls after a warm-up. */
function cpuPerCall(fn: () => unknown, times = 1000): number {
  for (let i = 0; i < 50; i++) fn();
  const start = process.cpuUsage();
  for (let i = 0; i < times; i++) fn();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / 1000 / times;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] ?? NaN;
const p90 = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length * 0.9)] ?? NaN;

async function main(): Promise<void> {
  const roots = rootsArg();
  const messages = Number(arg("messages", "150"));
  const rounds = Number(arg("rounds", "4"));
  const task = ocrTask();
  const codecs = new Map<string, Codec>();
  for (const root of roots) {
    codecs.set(root, (await import(pathToFileURL(join(root, "runtime/shared/task-body.ts")).href)) as Codec);
  }
  // The worker's side: the body read back and its tensor made the Float32Array onnxruntime gets.
  const toTensor = (codec: Codec, body: Buffer) =>
    decodeTensor((codec.decodeTaskBody(body) as InferenceTask).inputs[0]!);
  for (let r = 0; r < 3; r++) {
    for (const [root, codec] of codecs) {
      const body = codec.encodeTaskBody(task).content;
      const encode = cpuPerCall(() => codec.encodeTaskBody(task));
      const decode = cpuPerCall(() => toTensor(codec, body));
      say(
        `[${root}] body ${body.length} bytes; CPU ms per call: encode ${round(encode, 3)}` +
          ` decode to the model's tensor ${round(decode, 3)}`,
      );
    }
  }
  if (rounds === 0) return;

  const connection = await amqp.connect(services().amqpUrl, { noDelay: true });
  const publisher = await connection.createConfirmChannel();
  const consumer = await connection.createChannel();
  const queue = `bench-task-body-${process.pid}`;
  await publisher.assertQueue(queue, { durable: true, arguments: { "x-queue-type": "quorum" } });
  const waiting = new Map<string, () => void>();
  await consumer.consume(queue, (m) => {
    if (!m) return;
    consumer.ack(m);
    waiting.get(m.properties.messageId as string)?.();
  });
  const broker = pidsOf("beam.smp");
  const brokerCpu = () => broker.reduce((n, pid) => n + cpuMs(pid), 0);
  const latency = new Map<string, number[]>();
  const cpu = new Map<string, number[]>();
  try {
    for (let r = 0; r < rounds; r++) {
      for (const root of r % 2 ? [...roots].reverse() : roots) {
        const body = codecs.get(root)!.encodeTaskBody(task).content;
        const before = brokerCpu();
        for (let i = 0; i < messages; i++) {
          const id = `${r}-${root}-${i}`;
          const start = performance.now();
          const delivered = new Promise<void>((resolve) => waiting.set(id, resolve));
          const confirmed = new Promise<void>((resolve, reject) =>
            publisher.sendToQueue(queue, body, { persistent: true, messageId: id }, (error) =>
              error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve(),
            ),
          );
          await Promise.all([delivered, confirmed]);
          waiting.delete(id);
          latency.set(root, [...(latency.get(root) ?? []), performance.now() - start]);
          await sleep(8); // one connection's pace: the broker idles between tasks
        }
        cpu.set(root, [...(cpu.get(root) ?? []), (brokerCpu() - before) / messages]);
      }
    }
  } finally {
    await publisher.deleteQueue(queue).catch(() => undefined);
    await connection.close().catch(() => undefined);
  }
  for (const root of roots) {
    const l = latency.get(root)!;
    say(
      `[${root}] quorum queue publish -> delivery: p50 ${round(median(l), 2)} p90 ${round(p90(l), 2)} ms over ${l.length};` +
        ` RabbitMQ CPU ms per message by round ${cpu
          .get(root)!
          .map((c) => round(c, 2))
          .join(" ")}`,
    );
  }
}

await main();

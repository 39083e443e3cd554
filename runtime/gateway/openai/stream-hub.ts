/**
 * The gateway's end of the direct route for generated text: its own exclusive, auto-deleted,
 * non-durable queue that workers publish StreamMessages to while they generate (named in each
 * streaming task as `replyTo`), fanned out here to listeners by request id. It also tells workers
 * when a client went away (the cancel exchange). Nothing here is durable: a lost message only costs
 * the live view, since the result and its record travel the durable way (collector, PostgreSQL).
 */
import { randomUUID } from "node:crypto";
import type { Channel, ChannelModel } from "amqplib";
import { connectAmqp } from "../../shared/amqp.js";
import { generationNames, type StreamMessage } from "../../shared/contracts/index.js";
import type { Logger } from "../../shared/logger.js";

/** Receives the stream messages of one request, in the order the worker sent them. */
export type StreamListener = (message: StreamMessage) => void;

/** One connection, one queue per gateway process. */
export class StreamHub {
  private connection: ChannelModel | undefined;
  private channel: Channel | undefined;
  private queueName: string | undefined;
  private closed = false;
  private readonly listeners = new Map<string, StreamListener>();

  constructor(
    private readonly url: string,
    private readonly prefix: string,
    private readonly log: Logger,
  ) {}

  /** Connects and declares this process's queue; reconnects (with a new queue) if the broker drops it. */
  async start(): Promise<void> {
    const connection = await connectAmqp(this.url, "turnpike-gateway-streams");
    try {
      const channel = await connection.createChannel();
      const names = generationNames(this.prefix);
      const queue = names.gatewayQueue(randomUUID());
      await channel.assertQueue(queue, { exclusive: true, autoDelete: true, durable: false });
      await channel.assertExchange(names.cancelExchange, "fanout", { durable: false });
      await channel.consume(queue, (message) => message && this.dispatch(message.content), { noAck: true });
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
    await this.connection?.close().catch(() => undefined);
  }

  private dispatch(content: Buffer): void {
    let message: StreamMessage;
    try {
      message = JSON.parse(content.toString("utf8")) as StreamMessage;
    } catch {
      return this.log.warn("ignoring a stream message that is not JSON");
    }
    this.listeners.get(message.requestId)?.(message);
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

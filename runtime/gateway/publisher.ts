/**
 * The gateway's RabbitMQ side: one connection and one confirm channel, reopened on demand after a
 * failure, for confirmed publishing of InferenceTasks and for queue look-ups (model readiness).
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { connectAmqp, publishJson } from "../shared/amqp.js";
import type { InferenceTask } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";

/** What a queue look-up found. */
export interface QueueInfo {
  exists: boolean;
  messages: number;
  consumers: number;
}

/** Publishes tasks with publisher confirms. */
export class TaskPublisher {
  private connection?: ChannelModel;
  private channel?: ConfirmChannel;
  private opening?: Promise<ConfirmChannel>;
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
  ) {}

  /** Opens the connection now, so start-up fails fast when RabbitMQ is unreachable. */
  async start(): Promise<void> {
    await this.ensureChannel();
  }

  /** True while the connection and channel are open. */
  get healthy(): boolean {
    return this.channel !== undefined;
  }

  /** Publishes `task` to `queue` and resolves once the broker confirmed it (PublishRejectedError if not). */
  async publish(queue: string, task: InferenceTask): Promise<void> {
    const channel = await this.ensureChannel();
    await publishJson(channel, queue, task, {
      messageId: task.requestId,
      timestamp: Math.floor(task.submittedAt / 1000),
    });
  }

  /** Looks a queue up on a throwaway channel (a missing queue closes the channel it was asked on). */
  async queueInfo(queue: string): Promise<QueueInfo> {
    await this.ensureChannel();
    const channel = await this.connection!.createChannel();
    channel.on("error", () => undefined);
    try {
      const ok = await channel.checkQueue(queue);
      return { exists: true, messages: ok.messageCount, consumers: ok.consumerCount };
    } catch (error) {
      if (/NOT_FOUND/.test(String((error as Error).message)))
        return { exists: false, messages: 0, consumers: 0 };
      throw error;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Closes the channel and connection. */
  async close(): Promise<void> {
    this.closed = true;
    await this.channel?.close().catch(() => undefined);
    await this.connection?.close().catch(() => undefined);
    this.channel = undefined;
    this.connection = undefined;
  }

  private ensureChannel(): Promise<ConfirmChannel> {
    if (this.channel) return Promise.resolve(this.channel);
    if (this.closed) return Promise.reject(new Error("the publisher is closed"));
    this.opening ??= this.open().finally(() => (this.opening = undefined));
    return this.opening;
  }

  private async open(): Promise<ConfirmChannel> {
    if (!this.connection) {
      const connection = await connectAmqp(this.url, "turnpike-gateway");
      connection.on("error", (error: Error) => this.log.warn({ err: error }, "RabbitMQ connection error"));
      connection.on("close", () => {
        if (!this.closed) this.log.warn("RabbitMQ connection closed; reopening on the next publish");
        this.connection = undefined;
        this.channel = undefined;
      });
      this.connection = connection;
    }
    const channel = await this.connection.createConfirmChannel();
    channel.on("error", (error: Error) => this.log.warn({ err: error }, "RabbitMQ channel error"));
    channel.on("close", () => {
      if (this.channel === channel) this.channel = undefined;
    });
    this.channel = channel;
    return channel;
  }
}

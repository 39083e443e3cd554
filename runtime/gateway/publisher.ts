/**
 * The gateway's RabbitMQ side: one connection and one confirm channel, reopened on demand after a
 * failure, for confirmed publishing of InferenceTasks and for queue look-ups (model readiness).
 */
import { publishJson } from "../shared/amqp.js";
import { AmqpConnection } from "../shared/amqp-connection.js";
import {
  generationNames,
  type CancelMessage,
  type InferenceResult,
  type InferenceTask,
  type ModelConfig,
} from "../shared/contracts/index.js";
import { LaneDeclarer } from "../shared/lanes.js";
import type { Logger } from "../shared/logger.js";
import { encodeTaskBody } from "../shared/task-body.js";

/** What a queue look-up found. */
export interface QueueInfo {
  exists: boolean;
  messages: number;
  consumers: number;
}

/** Publishes tasks with publisher confirms. */
export class TaskPublisher {
  private readonly amqp: AmqpConnection;

  private readonly lanes: LaneDeclarer;

  constructor(
    url: string,
    log: Logger,
    private readonly prefix = "",
  ) {
    this.lanes = new LaneDeclarer(prefix);
    // Reopened on the next publish after a failure.
    this.amqp = new AmqpConnection({ url, name: "turnpike-gateway", log, reconnect: "on-demand" });
  }

  /** Opens the connection now, so start-up fails fast when RabbitMQ is unreachable. */
  async start(): Promise<void> {
    await this.amqp.session();
  }

  /** True while the connection and channel are open. */
  get healthy(): boolean {
    return this.amqp.ready;
  }

  /**
   * Publishes `task` to `queue` and resolves once the broker confirmed it (PublishRejectedError if
   * not). A result-cache hit publishes its result to the results queue the same way.
   */
  async publish(queue: string, task: InferenceTask | InferenceResult): Promise<void> {
    const { channel } = await this.amqp.session();
    // Tasks go through the task body codec (raw tensor bytes); results are JSON.
    const body = "route" in task ? encodeTaskBody(task) : task;
    await publishJson(channel, queue, body, {
      messageId: task.requestId,
      timestamp: Math.floor(task.submittedAt / 1000),
    });
  }

  /** Publishes `task` to `tenant`'s lane of `model`, declaring the lane first if this process has not seen it. */
  async publishToLane(model: ModelConfig, tenant: string, task: InferenceTask): Promise<void> {
    const session = await this.amqp.session();
    const lane = await this.lanes.ensure(session, model, tenant);
    await publishJson(session.channel, lane, encodeTaskBody(task), {
      messageId: task.requestId,
      timestamp: Math.floor(task.submittedAt / 1000),
    });
  }

  /**
   * Tells every generative worker that the tenant cancelled `requestId` (the cancel fanout exchange,
   * see runtime/worker/engines/llama/cancel-listener.ts); resolves once the broker confirmed it.
   */
  async broadcastCancel(requestId: string): Promise<void> {
    const { channel } = await this.amqp.session();
    const exchange = generationNames(this.prefix).cancelExchange;
    await channel.assertExchange(exchange, "fanout", { durable: false });
    const message: CancelMessage = { requestId, by: "tenant" };
    await new Promise<void>((resolve, reject) =>
      channel.publish(
        exchange,
        "",
        Buffer.from(JSON.stringify(message)),
        { persistent: false, contentType: "application/json" },
        (error) => (error ? reject(error instanceof Error ? error : new Error(String(error))) : resolve()),
      ),
    );
  }

  /** Looks a queue up on a throwaway channel (a missing queue closes the channel it was asked on). */
  async queueInfo(queue: string): Promise<QueueInfo> {
    const { connection } = await this.amqp.session();
    const channel = await connection.createChannel();
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
    await this.amqp.close();
  }
}

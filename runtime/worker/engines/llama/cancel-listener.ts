/**
 * Generations a client gave up on. The gateway publishes `{requestId}` to a fanout exchange when a
 * streaming client disconnects; every generative worker binds its own exclusive queue to it and
 * aborts the generation if it runs it, or skips it if it has not started yet.
 */
import type { Channel } from "amqplib";
import { generationNames } from "../../../shared/contracts/index.js";
import type { Logger } from "../../../shared/logger.js";

/** Cancelled ids remembered for requests still waiting in the queue (bounded, oldest dropped). */
const REMEMBERED = 10_000;

/** Tracks running generations and the cancellations that reach this worker. */
export class Cancellations {
  private readonly running = new Map<string, AbortController>();
  private readonly cancelled = new Set<string>();

  /** Binds this worker's own queue to the cancel exchange and listens. */
  async listen(channel: Channel, prefix: string, log: Logger): Promise<void> {
    const exchange = generationNames(prefix).cancelExchange;
    await channel.assertExchange(exchange, "fanout", { durable: false });
    const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true, durable: false });
    await channel.bindQueue(queue, exchange, "");
    await channel.consume(
      queue,
      (message) => {
        if (!message) return;
        try {
          const { requestId } = JSON.parse(message.content.toString("utf8")) as { requestId?: unknown };
          if (typeof requestId === "string") this.cancel(requestId);
        } catch {
          log.warn("ignoring a cancel message that is not JSON");
        }
      },
      { noAck: true },
    );
  }

  /** A signal that aborts when `requestId` is cancelled; call `done` when the generation ends. */
  start(requestId: string): { signal: AbortSignal; done: () => void } {
    const controller = new AbortController();
    if (this.cancelled.delete(requestId)) controller.abort();
    this.running.set(requestId, controller);
    return { signal: controller.signal, done: () => this.running.delete(requestId) };
  }

  cancel(requestId: string): void {
    const running = this.running.get(requestId);
    if (running) return running.abort();
    this.cancelled.add(requestId);
    if (this.cancelled.size > REMEMBERED) this.cancelled.delete(this.cancelled.values().next().value!);
  }
}

/**
 * Generations a client gave up on. The gateway publishes `{requestId}` to a fanout exchange when a
 * streaming client disconnects; every generative worker binds its own exclusive queue to it and
 * aborts the generation if it runs it, or skips it if it has not started yet.
 */
import type { Channel } from "amqplib";
import { generationNames, type CancelMessage } from "../../../shared/contracts/index.js";
import type { Logger } from "../../../shared/logger.js";

/** Cancelled ids remembered for requests still waiting in the queue (bounded, oldest dropped). */
const REMEMBERED = 10_000;

/** Who stopped a generation: its streaming client (went away) or its tenant (DELETE). */
type Who = NonNullable<CancelMessage["by"]>;

/** Tracks running generations and the cancellations that reach this worker. */
export class Cancellations {
  private readonly running = new Map<string, AbortController>();
  /** Cancelled ids not running here (yet), with who cancelled them. */
  private readonly cancelled = new Map<string, Who>();
  /** Who cancelled a running generation. */
  private readonly cancelledBy = new Map<string, Who>();

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
          const { requestId, by } = JSON.parse(message.content.toString("utf8")) as Partial<CancelMessage>;
          if (typeof requestId === "string") this.cancel(requestId, by === "tenant" ? "tenant" : "client");
        } catch {
          log.warn("ignoring a cancel message that is not JSON");
        }
      },
      { noAck: true },
    );
  }

  /** A signal that aborts when `requestId` is cancelled; call `done` when the generation ends. */
  start(requestId: string): { signal: AbortSignal; done: () => void; by: () => Who | undefined } {
    const controller = new AbortController();
    const early = this.cancelled.get(requestId);
    if (early) {
      this.cancelled.delete(requestId);
      this.cancelledBy.set(requestId, early);
      controller.abort();
    }
    this.running.set(requestId, controller);
    return {
      signal: controller.signal,
      by: () => this.cancelledBy.get(requestId),
      done: () => {
        this.running.delete(requestId);
        this.cancelledBy.delete(requestId);
      },
    };
  }

  cancel(requestId: string, by: Who = "client"): void {
    const running = this.running.get(requestId);
    if (running) {
      // The tenant's word wins: a client that goes away after it does not turn it back into success.
      if (this.cancelledBy.get(requestId) !== "tenant") this.cancelledBy.set(requestId, by);
      return running.abort();
    }
    if (this.cancelled.get(requestId) !== "tenant") this.cancelled.set(requestId, by);
    if (this.cancelled.size > REMEMBERED) this.cancelled.delete(this.cancelled.keys().next().value!);
  }
}

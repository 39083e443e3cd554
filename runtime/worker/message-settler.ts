/**
 * How a worker ends each message it received: publishes its outcome (the next segment's task, or
 * the InferenceResult) with publisher confirms and only then acks it, or returns it to its queue.
 * Keeps the count of messages not yet settled and tracks everything still under way, so a stopping
 * consumer can wait for it.
 *
 * Acks of one event-loop turn (a batch's confirms arrive together) leave as one multiple-ack when
 * they, with what was settled before, cover every delivery of the channel up to the highest of them:
 * on a quorum queue each ack frame is a Raft command of its own (bench/README.md "Synchronous
 * path"). Anything else, e.g. a task finished while an earlier delivery still waits in admission
 * or runs, is acked alone at once: holding it back would keep its prefetch slot taken.
 */
import { markStage, tracing } from "../shared/stage-trace.js";
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import {
  names,
  RESULT_BATCH_MESSAGE_TYPE,
  RESULT_MESSAGE_TYPE,
  type InferenceResult,
  type InferenceTask,
} from "../shared/contracts/index.js";
import { publishJson } from "../shared/amqp.js";
import { EncodedBody } from "../shared/task-body.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { ServedModel } from "./segment-runner.js";
import type { StepError } from "./step-error.js";
import { ENQUEUED_AT_HEADER, failedResult } from "./task-codec.js";

/** A final result ready to publish, with the message whose ack waits for it. */
export interface FinishedResult {
  message: ConsumeMessage;
  result: InferenceResult;
  /** The answering gateway's queue (the task's replyTo), if any. */
  replyTo?: string;
}

/** Largest body of one result-batch message; a batch of larger results is split. */
const MAX_BATCH_BODY_BYTES = 1 << 20;

/** Options of a {@link MessageSettler}. */
export interface MessageSettlerOptions {
  channel: ConfirmChannel;
  prefix: string;
  model: ServedModel;
  metrics: Metrics;
  log: Logger;
}

/** Publishes outcomes, then acks; or requeues. See the module comment. */
export class MessageSettler {
  private readonly settling = new Set<Promise<void>>();
  private unackedCount = 0;
  /** Delivery tags received and not yet settled, in delivery (= ascending) order. */
  private readonly open: number[] = [];
  private openHead = 0;
  /** Settled tags not yet at the head of `open` (acked alone, or nacked). */
  private readonly settledEarly = new Set<number>();
  /** Messages to ack at the end of this turn. */
  private acks: ConsumeMessage[] = [];

  constructor(private readonly options: MessageSettlerOptions) {}

  /** Messages received and not yet acked or nacked. */
  get unacked(): number {
    return this.unackedCount;
  }

  /** Counts a message just received; each one is settled exactly once, by ack or nack. */
  received(message: ConsumeMessage): void {
    this.open.push(message.fields.deliveryTag);
    this.unackedCount++;
    this.options.metrics.inFlight.inc({ target: this.options.model.runner.config.name });
  }

  /** Tracks work that will settle messages (a batch's post-processing, a generation) for {@link idle}. */
  track(work: Promise<void>): void {
    this.settling.add(work);
    void work.finally(() => this.settling.delete(work));
  }

  /** Resolves once nothing tracked is under way any more (including what started meanwhile). */
  async idle(): Promise<void> {
    while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
    this.flushAcks();
  }

  /** Ends a request with a failed result (deterministic failure): publish, then ack. */
  fail(message: ConsumeMessage, task: InferenceTask, error: StepError): void {
    this.options.log.warn(
      { requestId: task.requestId, code: error.code, err: error.cause ?? error },
      `request failed: ${error.message}`,
    );
    const queue = names(this.options.prefix).resultsQueue;
    this.publishThenAck(message, queue, failedResult(task, error), task.requestId, undefined, task.replyTo);
  }

  /** Publishes a message's outcome to `queue`; acks the message once the broker confirmed it, else requeues it. */
  publishThenAck(
    message: ConsumeMessage,
    queue: string,
    body: unknown,
    requestId: string,
    /** Runs once the publish is confirmed (a generation tells the streaming gateway it is done). */
    onConfirmed?: () => void,
    /**
     * For a result: the answering gateway's own queue. The same publish is routed there too (BCC,
     * removed before delivery), so the gateway answers at once while the collector records from the
     * durable copy. The task is acked only once that copy is confirmed, so an answer given before
     * the record always has a durable result or a task to redo behind it.
     */
    replyTo?: string,
  ): void {
    const { channel } = this.options;
    const headers: Record<string, unknown> = { [ENQUEUED_AT_HEADER]: Date.now() };
    if (replyTo) headers.BCC = [replyTo];
    const settled: Promise<void> = publishJson(channel, queue, body, {
      messageId: requestId,
      headers,
      ...(replyTo ? { type: RESULT_MESSAGE_TYPE } : {}),
    })
      .then(() => {
        markStage(requestId, "w.confirmed");
        onConfirmed?.();
        this.settle(message, () => this.ackSoon(message));
      })
      .catch(async (error: unknown) => {
        // The broker refused (e.g. the next queue is full or missing): back off a little before
        // the retry, so a short hiccup does not burn through the delivery limit at once.
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(message)));
        this.requeue(message, error);
      })
      .finally(() => this.settling.delete(settled));
    this.settling.add(settled);
  }

  /**
   * Publishes the final results of one model batch: those for the same gateway (replyTo) as one
   * result-batch message (RESULT_BATCH_MESSAGE_TYPE, up to MAX_BATCH_BODY_BYTES) to the result-batch
   * queue, routed to that gateway too; a result alone as a plain result message. Each task is acked
   * once the message that carries its result is confirmed, or requeued with the others if not.
   */
  publishResults(finished: FinishedResult[]): void {
    if (tracing) for (const one of finished) markStage(one.result.requestId, "w.publish");
    const groups = new Map<string | undefined, FinishedResult[]>();
    for (const one of finished) {
      const group = groups.get(one.replyTo);
      if (group) group.push(one);
      else groups.set(one.replyTo, [one]);
    }
    const queue = names(this.options.prefix).resultsQueue;
    for (const [replyTo, group] of groups) {
      let chunk: { one: FinishedResult; json: string }[] = [];
      let bytes = 0;
      const send = () => {
        if (chunk.length === 1) {
          const { one } = chunk[0]!;
          this.publishThenAck(one.message, queue, one.result, one.result.requestId, undefined, replyTo);
        } else if (chunk.length > 1) this.publishBatch(chunk, replyTo);
        chunk = [];
        bytes = 0;
      };
      for (const one of group) {
        const json = JSON.stringify(one.result);
        if (bytes + json.length > MAX_BATCH_BODY_BYTES) send();
        chunk.push({ one, json });
        bytes += json.length + 1;
      }
      send();
    }
  }

  private publishBatch(chunk: { one: FinishedResult; json: string }[], replyTo: string | undefined): void {
    const { channel, prefix } = this.options;
    const queue = names(prefix).resultBatchQueue;
    const headers: Record<string, unknown> = { [ENQUEUED_AT_HEADER]: Date.now() };
    if (replyTo) headers.BCC = [replyTo];
    const body = new EncodedBody(Buffer.from(`[${chunk.map((c) => c.json).join(",")}]`), "application/json");
    const messages = chunk.map((c) => c.one.message);
    const settled: Promise<void> = publishJson(channel, queue, body, {
      messageId: chunk[0]!.one.result.requestId,
      headers,
      type: RESULT_BATCH_MESSAGE_TYPE,
    })
      .then(() => {
        if (tracing) for (const c of chunk) markStage(c.one.result.requestId, "w.confirmed");
        for (const message of messages) this.settle(message, () => this.ackSoon(message));
      })
      .catch(async (error: unknown) => {
        await new Promise((resolve) => setTimeout(resolve, retryDelayMs(messages[0]!)));
        for (const message of messages) this.requeue(message, error);
      })
      .finally(() => this.settling.delete(settled));
    this.settling.add(settled);
  }

  /**
   * Returns a message to the queue for another attempt. Quorum queues count returns in
   * x-delivery-count and dead-letter the message once it exceeds the delivery limit.
   */
  requeue(message: ConsumeMessage, error: unknown): void {
    const { model, metrics, log } = this.options;
    const { deliveryLimit, name } = model.runner.config;
    const attempts = attemptOf(message);
    const last = attempts > deliveryLimit;
    if (last) metrics.deadLettered.inc({ model: name });
    log[last ? "error" : "warn"](
      { err: error, messageId: message.properties.messageId, attempt: attempts, deliveryLimit },
      last ? "giving up on the message: it goes to the dead-letter queue" : "requeueing the message",
    );
    this.settle(message, () => {
      this.options.channel.nack(message, false, true);
      this.settledEarly.add(message.fields.deliveryTag);
      // Step over settled deliveries at the head, so a run of nacks leaves nothing behind.
      while (this.openHead < this.open.length && this.settledEarly.delete(this.open[this.openHead]!))
        this.openHead++;
      this.compact();
    });
  }

  private compact(): void {
    if (this.openHead < 1024) return;
    this.open.splice(0, this.openHead);
    this.openHead = 0;
  }

  private ackSoon(message: ConsumeMessage): void {
    this.acks.push(message);
    if (this.acks.length === 1) setImmediate(() => this.flushAcks());
  }

  /** Sends this turn's acks: one multiple-ack for the run they complete, the rest one by one. */
  private flushAcks(): void {
    const acks = this.acks;
    if (acks.length === 0) return;
    this.acks = [];
    const { channel } = this.options;
    const pending = new Map(acks.map((m) => [m.fields.deliveryTag, m]));
    // Walk the oldest open deliveries while each is settled or acked now: the last of those acked
    // now may carry all of them (the broker has already forgotten the ones settled before).
    let cover: ConsumeMessage | undefined;
    while (this.openHead < this.open.length) {
      const tag = this.open[this.openHead]!;
      const now = pending.get(tag);
      if (now) {
        cover = now;
        pending.delete(tag);
      } else if (!this.settledEarly.delete(tag)) break;
      this.openHead++;
    }
    this.compact();
    try {
      if (cover) channel.ack(cover, true);
      for (const [tag, message] of pending) {
        channel.ack(message);
        this.settledEarly.add(tag);
      }
    } catch (err) {
      // The channel is gone; the broker requeues every unacked message by itself.
      this.options.log.warn({ err }, "channel closed before acking");
    }
  }

  private settle(message: ConsumeMessage, action: () => void): void {
    try {
      action();
    } catch (err) {
      // The channel is gone; the broker requeues every unacked message by itself.
      this.options.log.warn(
        { err, messageId: message.properties.messageId },
        "channel closed before settling",
      );
    }
    this.unackedCount--;
    this.options.metrics.inFlight.dec({ target: this.options.model.runner.config.name });
  }
}

/** Which delivery attempt this is (1 = first); quorum queues count earlier ones in x-delivery-count. */
function attemptOf(message: ConsumeMessage): number {
  const previous = Number(message.properties.headers?.["x-delivery-count"] ?? 0);
  return (Number.isFinite(previous) ? previous : 0) + 1;
}

/** Pause before requeueing after a refused publish: 200 ms per attempt, at most 2 s. */
function retryDelayMs(message: ConsumeMessage): number {
  return Math.min(2_000, 200 * attemptOf(message));
}

/**
 * The AMQP side of the collector: consumes the results queue, the result-batch queue (several
 * results of one worker batch per message) and the dead-task queue (see dead-task.ts) with manual
 * acks, batches deliveries, hands each batch to the ResultSink and
 * acknowledges it only afterwards (one multiple-ack per batch).
 * On a lost connection or channel it drops what it has not acknowledged (the broker redelivers it)
 * and reconnects with backoff.
 */
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import { declareSharedTopology } from "../shared/amqp.js";
import { AmqpConnection, type AmqpSession } from "../shared/amqp-connection.js";
import { names, RESULT_MESSAGE_TYPE } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";
import { Batcher } from "./batcher.js";
import { deadTaskResult } from "./dead-task.js";
import { parseResultBatchMessage, parseResultMessage, type ParsedBatchItem } from "./result-message.js";
import type { ResultSink } from "./result-sink.js";

/** Test seams. Production code passes none. */
export interface CollectorHooks {
  /** Called after a batch is recorded, settled and announced, right before its ack. */
  beforeAck?(requestIds: string[]): Promise<void> | void;
}

export interface ResultConsumerOptions {
  amqpUrl: string;
  prefix: string;
  batchSize: number;
  flushMs: number;
  prefetch: number;
  closeTimeoutMs: number;
  sink: ResultSink;
  log: Logger;
  hooks?: CollectorHooks;
}

/** One message as delivered on one channel (acks are only valid on the channel that delivered). */
interface Delivery {
  msg: ConsumeMessage;
  channel: ConfirmChannel;
  /** One item for a result or a dead task; one per result of a result-batch message. */
  items: ParsedBatchItem[];
  /** From the dead-task queue: recorded if it is a task, else only acknowledged (the DLQ has its copy). */
  deadLetter: boolean;
  /** From the result-batch queue. */
  batch?: boolean;
}

/** Consumes and acknowledges result messages; see the file comment. */
export class ResultConsumer {
  private readonly amqp: AmqpConnection;
  private consumerTag: string | undefined;
  private batchConsumerTag: string | undefined;
  private deadTaskConsumerTag: string | undefined;
  private closing = false;
  /** Aborted by abort() or a close that ran out of time: every retry loop gives up, nothing is acked. */
  private readonly hardStop = new AbortController();
  private readonly batcher: Batcher<Delivery>;
  private readonly queue: string;
  private readonly batchQueue: string;
  private readonly deadTaskQueue: string;
  private readonly modelQueuePrefix: string;

  constructor(private readonly options: ResultConsumerOptions) {
    const n = names(options.prefix);
    this.queue = n.resultsQueue;
    this.batchQueue = n.resultBatchQueue;
    this.deadTaskQueue = n.deadTaskQueue;
    this.modelQueuePrefix = n.modelQueue("");
    this.amqp = new AmqpConnection({
      url: options.amqpUrl,
      name: `turnpike-collector-${options.prefix}`,
      log: options.log,
      reconnect: "background",
      setup: (session) => this.consume(session),
      onLost: (_session, why) => this.lost(why),
    });
    this.batcher = new Batcher(
      options.batchSize,
      options.flushMs,
      (batch) => this.handleBatch(batch),
      (error) => options.log.error({ err: error }, "batch handler failed"),
    );
  }

  /** True while a consumer is registered on a live channel. */
  get consuming(): boolean {
    return !this.closing && this.consumerTag !== undefined;
  }

  /** Connects and starts consuming; the first connection failure is thrown (fail fast at start-up). */
  async start(): Promise<void> {
    await this.amqp.session();
  }

  /** Stops consuming, records and acknowledges what was delivered, then disconnects. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    void this.amqp.stopReconnecting();
    const timer = setTimeout(
      () => this.hardStop.abort(new Error("collector close timed out")),
      this.options.closeTimeoutMs,
    );
    try {
      const { consumerTag, batchConsumerTag, deadTaskConsumerTag } = this;
      const channel = this.channel;
      // basic.cancel first: after cancel-ok nothing new arrives, so the flush below is the last batch.
      for (const tag of [consumerTag, batchConsumerTag, deadTaskConsumerTag]) {
        if (channel && tag) await channel.cancel(tag).catch(() => undefined);
      }
      this.forgetConsumers();
      // Raced with the hard stop: a batch stuck on a dependency must not hold the close forever.
      await Promise.race([this.batcher.flush(), aborted(this.hardStop.signal)]);
    } finally {
      clearTimeout(timer);
      await this.amqp.close({ graceful: true });
    }
  }

  /**
   * Drops everything as a crash would: no flush, no ack. The broker requeues every unacknowledged
   * delivery when the connection goes, so the results are redelivered to the next consumer.
   */
  async abort(): Promise<void> {
    this.closing = true;
    void this.amqp.stopReconnecting();
    this.hardStop.abort(new Error("collector aborted"));
    this.batcher.discard();
    this.forgetConsumers();
    await this.amqp.close({ graceful: false });
  }

  /** The channel of the open session: acks are only valid on the channel that delivered. */
  private get channel(): ConfirmChannel | undefined {
    return this.amqp.current?.channel;
  }

  /** Prepares a new session: topology, prefetch, and both consumers on its channel. */
  private async consume({ channel }: AmqpSession): Promise<void> {
    const { prefix, prefetch, log } = this.options;
    await declareSharedTopology(channel, prefix);
    // Per-consumer prefetch of at least one batch: the broker never has to wait for our acks to
    // fill a batch, and never pushes more than we are prepared to hold unacknowledged.
    await channel.prefetch(prefetch, false);
    if (this.closing) throw new Error("collector closed while connecting");
    const { consumerTag } = await channel.consume(this.queue, (msg) => this.onMessage(msg, channel), {
      noAck: false,
    });
    this.consumerTag = consumerTag;
    // On the same channel, so that one multiple-ack per batch still covers exactly that batch.
    // A batch message carries up to a worker batch of results (at most 1 MiB): a smaller prefetch
    // keeps what we hold unacknowledged near the single results' bound.
    await channel.prefetch(batchPrefetch(prefetch), false);
    const batches = await channel.consume(this.batchQueue, (msg) => this.onMessage(msg, channel, "batch"), {
      noAck: false,
    });
    this.batchConsumerTag = batches.consumerTag;
    await channel.prefetch(prefetch, false);
    const dead = await channel.consume(this.deadTaskQueue, (msg) => this.onMessage(msg, channel, "dead"), {
      noAck: false,
    });
    this.deadTaskConsumerTag = dead.consumerTag;
    log.info(
      {
        queue: this.queue,
        batchQueue: this.batchQueue,
        deadTaskQueue: this.deadTaskQueue,
        prefetch,
        batchPrefetch: batchPrefetch(prefetch),
      },
      "consuming results",
    );
  }

  private onMessage(
    msg: ConsumeMessage | null,
    channel: ConfirmChannel,
    from: "results" | "batch" | "dead" = "results",
  ): void {
    if (msg === null) {
      // The broker cancelled us (queue deleted?): start over on a fresh connection.
      if (channel === this.channel && !this.closing) this.recycle("consumer cancelled by the broker");
      return;
    }
    if (channel !== this.channel) return; // a dead channel's message: the broker redelivers it
    const deadLetter = from === "dead";
    if (from === "batch") {
      this.batcher.add({
        msg,
        channel,
        items: parseResultBatchMessage(msg.content),
        deadLetter,
        batch: true,
      });
      return;
    }
    const parsed = deadLetter
      ? deadTaskResult(msg.content, msg.properties.headers, this.modelQueuePrefix)
      : parseResultMessage(msg.content);
    if (deadLetter && parsed.ok) {
      this.options.log.warn(
        { requestId: parsed.result.requestId, error: parsed.result.error?.message },
        "recording a dead-lettered task as failed",
      );
    }
    this.batcher.add({ msg, channel, items: [{ parsed }], deadLetter });
  }

  /** Unexpected loss of the connection or channel: forget unacked work (AmqpConnection reconnects). */
  private lost(why: string): void {
    if (this.closing) return;
    this.options.log.warn(`${why}; unacknowledged results will be redelivered, reconnecting`);
    this.forgetConsumers();
    this.batcher.discard();
  }

  private forgetConsumers(): void {
    this.consumerTag = this.batchConsumerTag = this.deadTaskConsumerTag = undefined;
  }

  /** Deliberately drops the current connection (its unacked deliveries are redelivered). */
  private recycle(why: string): void {
    this.amqp.recycle(why);
  }

  private async handleBatch(batch: Delivery[]): Promise<void> {
    const { sink, log, hooks } = this.options;
    const channel = batch[0]?.channel;
    if (!channel) return;
    try {
      const results = batch.flatMap((d) => d.items.flatMap((i) => (i.parsed.ok ? [i.parsed.result] : [])));
      const outcome = await sink.process(results, this.hardStop.signal);
      const poisonReason = new Map(outcome.poison.map((p) => [p.result, p.reason] as const));
      const dead = batch.flatMap((d) =>
        d.items.flatMap(({ parsed, raw }) => {
          if (!parsed.ok && d.deadLetter) return []; // not a task: already in the DLQ, just acked
          const reason = parsed.ok ? poisonReason.get(parsed.result) : parsed.reason;
          return reason === undefined ? [] : [{ delivery: d, reason, raw }];
        }),
      );
      const undeliverable = await this.deadLetter(dead);
      await hooks?.beforeAck?.(outcome.recorded.map((r) => r.requestId));
      this.acknowledge(channel, batch, undeliverable);
    } catch (error) {
      if (this.hardStop.signal.aborted) return; // stopping: the broker redelivers the batch
      // Never let a later multiple-ack cover this batch: drop the channel so all of it is redelivered.
      log.error(
        { err: error, batch: batch.length },
        "batch not recorded; dropping the channel for redelivery",
      );
      this.recycle("batch failed");
    }
  }

  /**
   * Poison messages go to the installation's dead-letter exchange (the DLQ is where operators look),
   * with the reason in a header, so they are kept rather than dropped. Returns the ones the broker
   * would not take; those are rejected without requeue instead.
   */
  private async deadLetter(
    dead: { delivery: Delivery; reason: string; raw?: unknown }[],
  ): Promise<Set<Delivery>> {
    const { log, prefix } = this.options;
    const exchange = names(prefix).deadLetterExchange;
    const failed = new Set<Delivery>();
    await Promise.all(
      dead.map(
        ({ delivery, reason, raw }) =>
          new Promise<void>((resolve) => {
            const { msg, channel } = delivery;
            // One poison result of a result-batch message goes alone, as a plain result message.
            const item = raw !== undefined;
            const content = item ? Buffer.from(JSON.stringify(raw)) : msg.content;
            log.error(
              {
                messageId: msg.properties.messageId,
                reason,
                redelivered: msg.fields.redelivered,
                body: content.toString("utf8", 0, Math.min(content.length, 300)),
              },
              "dead-lettering a result message that cannot be recorded",
            );
            const headers = {
              ...msg.properties.headers,
              "x-turnpike-reason": reason,
              "x-turnpike-source-queue": delivery.batch ? this.batchQueue : this.queue,
            };
            try {
              channel.publish(
                exchange,
                "",
                content,
                {
                  // Not every property: a copied userId or expiration would be refused or expire the evidence.
                  persistent: true,
                  headers,
                  messageId: item ? resultIdOf(raw) : (msg.properties.messageId as string | undefined),
                  contentType: msg.properties.contentType as string | undefined,
                  type: item ? RESULT_MESSAGE_TYPE : (msg.properties.type as string | undefined),
                  timestamp: msg.properties.timestamp as number | undefined,
                },
                (error: unknown) => {
                  if (error) failed.add(delivery);
                  resolve();
                },
              );
            } catch {
              failed.add(delivery);
              resolve();
            }
          }),
      ),
    );
    return failed;
  }

  /** One multiple-ack for the whole batch when possible; per message when some must be rejected. */
  private acknowledge(channel: ConfirmChannel, batch: Delivery[], reject: Set<Delivery>): void {
    if (channel !== this.channel) {
      this.options.log.warn({ batch: batch.length }, "channel gone before the ack; the broker redelivers");
      return;
    }
    const last = batch[batch.length - 1];
    if (!last) return;
    if (reject.size === 0) {
      // Deliveries arrive in tag order and batches are handled in order, so everything up to the
      // last tag of this batch is exactly this batch plus batches already acknowledged.
      channel.ack(last.msg, true);
      return;
    }
    for (const delivery of batch) {
      if (reject.has(delivery)) channel.nack(delivery.msg, false, false);
      else channel.ack(delivery.msg, false);
    }
  }
}

/** Prefetch of the result-batch consumer: a sixteenth of the results queue's, at least 4. */
function batchPrefetch(prefetch: number): number {
  return Math.max(4, Math.ceil(prefetch / 16));
}

/** The requestId of a result-batch item, if it has a readable one. */
function resultIdOf(raw: unknown): string | undefined {
  const id = (raw as { requestId?: unknown } | null)?.requestId;
  return typeof id === "string" ? id : undefined;
}

/** Resolves once `signal` aborts (never, if it does not). */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
}

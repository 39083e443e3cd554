/**
 * The worker's queue side: consumes its model's queue and every tenant lane of the model
 * (runtime/shared/lanes.ts), each with a bounded prefetch; picks which received request starts next
 * with the FairScheduler (priority with a floor, then weighted fair shares between tenants); batches
 * requests, runs them, publishes each outcome with publisher confirms and only then acks. Requests
 * are handed to the batcher (or a generation) only while it has room for them, so the choice is
 * made as late as possible; everything received stays unacked until it ran.
 *
 * Per message:
 * - not a task at all (not JSON, no request id) -> nack with requeue; the quorum queue's delivery
 *   limit dead-letters it after a few attempts (the last one is logged and counted);
 * - a deterministic failure (malformed task, bad input, model or processor error) -> a failed
 *   InferenceResult to the results queue, then ack: the request ends and its quota is settled;
 * - success -> the next segment's task to the next model's queue, or the InferenceResult;
 * - a publish that is not confirmed -> nack with requeue (redelivery is idempotent: message id =
 *   request id, and the collector upserts);
 * - a task its tenant cancelled (DELETE /v1/requests/{id}; checked here, where every task is
 *   accepted, whatever queue it came from) -> a cancelled InferenceResult, then ack, without running.
 */
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import { performance } from "node:perf_hooks";
import {
  names,
  RESULT_MESSAGE_TYPE,
  type InferenceResult,
  type InferenceTask,
  entryModel,
  providerArguments,
} from "../shared/contracts/index.js";
import { publishJson } from "../shared/amqp.js";
import { EncodedBody, encodeTaskBody } from "../shared/task-body.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { DecodedTensor } from "../shared/tensors.js";
import { concatRows, splitRows } from "./batch-tensors.js";
import { Batcher } from "./batcher.js";
import { FairScheduler, type FairClass } from "./fair-scheduler.js";
import {
  finishRequest,
  padAxisOf,
  prepareRequest,
  type PreparedRequest,
  type ServedModel,
} from "./segment-runner.js";
import type { CancelCheck } from "./cancel-marks.js";
import { Cancellations } from "./engines/llama/cancel-listener.js";
import { runGeneration } from "./engines/llama/run-generation.js";
import { StepError, toStepError } from "./step-error.js";
import {
  cancelledResult,
  ENQUEUED_AT_HEADER,
  failedResult,
  MalformedTaskError,
  nextTask,
  parseTask,
  succeededResult,
} from "./task-codec.js";

/** Options of a {@link ModelConsumer}. */
export interface ConsumerOptions {
  channel: ConfirmChannel;
  prefix: string;
  /** The model's queue and its tenants' lanes; more can be added with {@link ModelConsumer.consume}. */
  queues: string[];
  model: ServedModel;
  /** Priority and weight of a tenant (from the runtime config; defaults for unknown tenants). */
  classOf: (tenant: string) => FairClass;
  metrics: Metrics;
  log: Logger;
  prefetch: number;
  /** Called when the model cannot run any more (not a request's fault); the worker should exit. */
  onBroken: (error: Error) => void;
  /** Called for each task as it is accepted for running, in that order (tests, measurements). */
  onAccepted?: (task: InferenceTask) => void;
  /** Whether the tenant cancelled a task (none: nothing is ever cancelled). */
  cancelCheck?: CancelCheck;
}

interface Item {
  message: ConsumeMessage;
  request: PreparedRequest;
}

/** A received task waiting for its turn. */
interface Received {
  message: ConsumeMessage;
  task: InferenceTask;
}

/** Consumes one model queue; see the module comment for the life of a message. */
export class ModelConsumer {
  private readonly consumerTags = new Map<string, string>();
  private stopped = false;
  /** While consumers are being registered at start, received tasks wait (see start). */
  private holding = false;
  private onCancelled: () => void = () => undefined;
  private readonly fair = new FairScheduler<Received>();
  /** Generations running now (generative models). */
  private generating = 0;
  private readonly settling = new Set<Promise<void>>();
  /** Tasks waiting for the cancellation check; drained before the batcher on stop. */
  private readonly checking = new Set<Promise<void>>();
  private readonly batcher: Batcher<Item>;
  private unacked = 0;
  /** Generations clients gave up on (generative models only). */
  private readonly cancellations = new Cancellations();

  /** The batch size in force (batching reloads change it). */
  private batchLimit: number;

  constructor(private readonly options: ConsumerOptions) {
    const { runner } = options.model;
    this.batchLimit = this.limits(runner.config.batching).maxBatchSize;
    this.batcher = new Batcher<Item>({
      ...this.limits(runner.config.batching),
      rowsOf: (item) => item.request.rows,
      keyOf: (item) => item.request.key,
      run: (items) => this.runBatch(items),
      onTaken: () => this.admit(),
      onError: (error, items) => {
        options.log.error(
          { err: error, count: items.length },
          "batch runner failed; requeueing its messages",
        );
        for (const item of items) this.requeue(item.message, error);
      },
    });
  }

  /** Messages received and not yet acked or nacked. */
  get inFlight(): number {
    return this.unacked;
  }

  /** Applies new batching limits from a reloaded config. */
  configure(batching: { maxBatchSize: number; maxDelayMs: number }): void {
    this.batchLimit = this.limits(batching).maxBatchSize;
    this.batcher.configure(this.limits(batching));
    this.admit();
  }

  /** Starts consuming every queue of the options (manual acks, bounded prefetch per queue). */
  async start(onCancelled: () => void): Promise<void> {
    const { channel, prefetch, log } = this.options;
    this.onCancelled = onCancelled;
    // Per consumer (not global): each lane may hold `prefetch` unacked messages.
    await channel.prefetch(prefetch);
    if (this.options.model.runner.generator) {
      await this.cancellations.listen(channel, this.options.prefix, log);
    }
    // Nothing starts before every queue is consumed and has had a turn to deliver: otherwise the
    // first lane to deliver would take the first batches alone.
    this.holding = true;
    try {
      for (const queue of this.options.queues) await this.consume(queue);
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      this.holding = false;
    }
    this.admit();
  }

  /** Consumes one more queue (a tenant lane added by a config reload); a no-op if already consumed. */
  async consume(queue: string): Promise<void> {
    const { channel, prefetch, log } = this.options;
    if (this.stopped || this.consumerTags.has(queue)) return;
    this.consumerTags.set(queue, "");
    const { consumerTag } = await channel.consume(
      queue,
      (message) => {
        if (message === null) {
          log.error({ queue }, "the broker cancelled the consumer (queue deleted?)");
          this.consumerTags.delete(queue);
          this.onCancelled();
          return;
        }
        this.onMessage(message);
      },
      // The arguments tell the operator which execution provider this worker really runs on.
      {
        noAck: false,
        ...(this.options.model.runner.provider
          ? { arguments: providerArguments(this.options.model.runner.provider) }
          : {}),
      },
    );
    this.consumerTags.set(queue, consumerTag);
    log.info({ queue, prefetch, consumerTag }, "consuming");
  }

  /**
   * Stops taking messages and finishes what was received: runs waiting batches at once, publishes
   * and acks. Returns false if `timeoutMs` passed first (unacked messages then return to the queue
   * when the channel closes).
   */
  async stop(timeoutMs: number): Promise<boolean> {
    const { channel, log } = this.options;
    this.stopped = true;
    const tags = [...this.consumerTags.values()].filter(Boolean);
    this.consumerTags.clear();
    for (const tag of tags) {
      await channel.cancel(tag).catch((err: unknown) => log.warn({ err }, "cancelling the consumer"));
    }
    const drained = (async () => {
      // Everything received runs, as before lanes: fairness no longer matters while draining.
      for (const received of this.fair.drain()) this.accept(received);
      await Promise.allSettled([...this.checking]);
      await this.batcher.flush();
      while (this.settling.size > 0) await Promise.allSettled([...this.settling]);
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await Promise.race([drained.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!ok) log.warn({ unacked: this.unacked }, "drain timed out; unacked messages return to the queue");
    return ok;
  }

  private limits(batching: { maxBatchSize: number; maxDelayMs: number }) {
    const batchable = this.options.model.runner.batchable;
    return { maxBatchSize: batchable ? batching.maxBatchSize : 1, maxDelayMs: batching.maxDelayMs };
  }

  private onMessage(message: ConsumeMessage): void {
    const { model, metrics } = this.options;
    this.unacked++;
    metrics.inFlight.inc({ target: model.runner.config.name });
    let task: InferenceTask;
    try {
      task = parseTask(message.content);
    } catch (error) {
      if (error instanceof MalformedTaskError) return this.fail(message, error.task, error);
      return this.requeue(message, error);
    }
    if (this.stopped) return this.accept({ message, task });
    this.fair.push(this.options.classOf(task.tenant), { message, task }, rowsOf(task));
    this.admit();
  }

  /** Room for more started requests: one batch waiting beside the running one, or free sequences. */
  private hasRoom(): boolean {
    const { runner } = this.options.model;
    // Tasks whose cancellation check is still out will join the batcher or start a generation.
    const taken = this.checking.size;
    if (runner.generator) return this.generating + taken < runner.config.batching.maxBatchSize;
    return this.batcher.pending + taken < this.batchLimit;
  }

  /** Starts the requests the scheduler picks while there is room for them. */
  private admit(): void {
    if (this.holding) return;
    while (this.fair.size > 0 && this.hasRoom()) this.accept(this.fair.next()!);
  }

  /**
   * The one place where a received task is accepted for running: from here on it is the model's
   * (queue wait measured; unless its tenant cancelled it, prepared and handed to the batcher or a
   * generation).
   */
  private accept({ message, task }: Received): void {
    const { model, metrics } = this.options;
    const name = model.runner.config.name;
    const header = Number(message.properties.headers?.[ENQUEUED_AT_HEADER]);
    const enqueuedAt = Number.isFinite(header) && header > 0 ? header : task.submittedAt;
    const queuedMs = Math.max(0, Date.now() - enqueuedAt);
    metrics.queueWait.observe({ model: name }, queuedMs / 1000);
    this.options.onAccepted?.(task);
    const check = this.options.cancelCheck;
    if (!check) return this.run(message, task, queuedMs);
    const checked = check
      .isCancelled(task)
      .then((cancelled) =>
        cancelled ? this.skipCancelled(message, task) : this.run(message, task, queuedMs),
      )
      .catch((error: unknown) => this.requeue(message, error))
      .finally(() => {
        this.checking.delete(checked);
        this.admit();
      });
    this.checking.add(checked);
  }

  /** A task the tenant cancelled: its cancelled result, then ack; the model never sees it. */
  private skipCancelled(message: ConsumeMessage, task: InferenceTask): void {
    this.options.log.info({ requestId: task.requestId }, "skipping a request its tenant cancelled");
    const queue = names(this.options.prefix).resultsQueue;
    this.publishThenAck(message, queue, cancelledResult(task), task.requestId);
  }

  /** Runs an accepted task: generates, or prepares it and hands it to the batcher. */
  private run(message: ConsumeMessage, task: InferenceTask, queuedMs: number): void {
    const { model, log } = this.options;
    if (model.runner.generator) return this.generate(message, task, queuedMs);
    let request: PreparedRequest;
    try {
      request = prepareRequest(model, task, queuedMs);
    } catch (error) {
      return this.fail(message, task, toStepError(error, "invalid_input", "preparing the request"));
    }
    log.debug({ requestId: task.requestId, rows: request.rows }, "request waiting for a batch");
    this.batcher.add({ message, request });
  }

  /** Runs one batch; on a model error with several requests, retries each alone to isolate it. */
  private async runBatch(items: Item[]): Promise<void> {
    const { model, metrics, log } = this.options;
    const { runner } = model;
    let perItem: DecodedTensor[][];
    const started = performance.now();
    try {
      const feeds = runner.tensors.inputs.map((input) =>
        concatRows(
          items.map((item) => item.request.feeds.find((f) => f.name === input.name)!),
          padAxisOf(runner),
        ),
      );
      // The stacked feeds are this batch's own (a lone request's are not read again): move them.
      const outputs = await runner.run(feeds, { giveAway: true });
      if (items.length === 1) perItem = [outputs];
      else {
        const rows = items.map((item) => item.request.rows);
        const split = outputs.map((output) => splitRows(output, rows));
        perItem = items.map((_, i) => split.map((pieces) => pieces[i]!));
      }
    } catch (error) {
      const broken = runner.failure();
      if (broken) {
        // Not the requests' fault: give them back for another worker and stop this one.
        for (const item of items) this.requeue(item.message, broken);
        return this.options.onBroken(broken);
      }
      if (items.length > 1) {
        log.warn({ err: error, batchSize: items.length }, "batch failed; running its requests one by one");
        for (const item of items) await this.runBatch([item]);
        return;
      }
      const item = items[0]!;
      return this.fail(
        item.message,
        item.request.task,
        toStepError(error, "model_error", "running the model"),
      );
    }
    const inferMs = performance.now() - started;
    metrics.inferenceDuration.observe({ model: runner.config.name }, inferMs / 1000);
    metrics.batchSize.observe({ model: runner.config.name }, items.length);
    // Post-process on the next turn: by then the batcher has handed the next batch to the model
    // thread, so decoding and publishing this one overlap with its run. Tracked for drain.
    const post = new Promise<void>((resolve) =>
      setImmediate(() => {
        try {
          items.forEach((item, i) => this.succeed(item, perItem[i]!, { inferMs, batchSize: items.length }));
        } finally {
          resolve();
        }
      }),
    );
    this.settling.add(post);
    void post.finally(() => this.settling.delete(post));
  }

  /**
   * A generative model's request: generates in a sequence of its own (up to maxBatchSize side by
   * side, bounded by the prefetch), relays text to the answering gateway while it comes, then
   * publishes the result and acks like every other request. Tracked for drain.
   */
  private generate(message: ConsumeMessage, task: InferenceTask, queuedMs: number): void {
    const { model, channel, metrics, log } = this.options;
    const name = model.runner.config.name;
    const running = runGeneration(
      { engine: model.runner.generator!, channel, worker: model.worker, cancellations: this.cancellations },
      task,
      queuedMs,
    )
      .then(({ result, announce }) => {
        metrics.inferenceDuration.observe({ model: name }, result.steps.at(-1)!.inferMs / 1000);
        metrics.tokensProcessed.inc({ model: name, tenant: task.tenant }, result.outputTokens);
        const queue = names(this.options.prefix).resultsQueue;
        this.publishThenAck(message, queue, result, task.requestId, announce, task.replyTo);
      })
      .catch((error: unknown) => {
        const broken = model.runner.failure();
        if (broken) {
          this.requeue(message, broken);
          return this.options.onBroken(broken);
        }
        log.debug({ err: error, requestId: task.requestId }, "generation failed");
        this.fail(message, task, toStepError(error, "model_error", "generating"));
      })
      .finally(() => {
        this.settling.delete(running);
        this.generating--;
        this.admit();
      });
    this.generating++;
    this.settling.add(running);
  }

  private succeed(item: Item, outputs: DecodedTensor[], run: { inferMs: number; batchSize: number }): void {
    const { model, prefix, metrics } = this.options;
    const { task, segment } = item.request;
    let queue: string;
    let body: EncodedBody | InferenceResult;
    let replyTo: string | undefined;
    try {
      const outcome = finishRequest(model, item.request, outputs, run);
      metrics.tokensProcessed.inc(
        { model: model.runner.config.name, tenant: task.tenant },
        outcome.outputTokens,
      );
      const next = entryModel(segment.rest);
      if (next) {
        queue = names(prefix).modelQueue(next);
        body = encodeTaskBody(
          nextTask(task, segment.rest, outcome.outputs, outcome.outputTokens, outcome.timings),
        );
      } else {
        queue = names(prefix).resultsQueue;
        body = succeededResult(task, outcome.outputs, outcome.outputTokens, outcome.timings);
        replyTo = task.replyTo;
      }
    } catch (error) {
      return this.fail(item.message, task, toStepError(error, "processor_error", "finishing the request"));
    }
    this.publishThenAck(item.message, queue, body, task.requestId, undefined, replyTo);
  }

  /** Ends a request with a failed result (deterministic failure): publish, then ack. */
  private fail(message: ConsumeMessage, task: InferenceTask, error: StepError): void {
    this.options.log.warn(
      { requestId: task.requestId, code: error.code, err: error.cause ?? error },
      `request failed: ${error.message}`,
    );
    const queue = names(this.options.prefix).resultsQueue;
    this.publishThenAck(message, queue, failedResult(task, error), task.requestId, undefined, task.replyTo);
  }

  private publishThenAck(
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
        onConfirmed?.();
        this.settle(message, () => channel.ack(message));
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
   * Returns a message to the queue for another attempt. Quorum queues count returns in
   * x-delivery-count and dead-letter the message once it exceeds the delivery limit.
   */
  private requeue(message: ConsumeMessage, error: unknown): void {
    const { model, metrics, log } = this.options;
    const { deliveryLimit, name } = model.runner.config;
    const attempts = attemptOf(message);
    const last = attempts > deliveryLimit;
    if (last) metrics.deadLettered.inc({ model: name });
    log[last ? "error" : "warn"](
      { err: error, messageId: message.properties.messageId, attempt: attempts, deliveryLimit },
      last ? "giving up on the message: it goes to the dead-letter queue" : "requeueing the message",
    );
    this.settle(message, () => this.options.channel.nack(message, false, true));
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
    this.unacked--;
    this.options.metrics.inFlight.dec({ target: this.options.model.runner.config.name });
  }
}

/** What starting a task costs the model, for fair shares: its rows (dimension 0 of its first input). */
function rowsOf(task: InferenceTask): number {
  const rows = task.inputs[0]?.shape[0];
  return rows !== undefined && rows > 0 ? rows : 1;
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

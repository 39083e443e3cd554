/**
 * The worker's queue side: consumes its model's queue and every tenant lane of the model
 * (runtime/shared/lanes.ts), each with a bounded prefetch; lets TaskAdmission pick which received
 * request starts next and when (fair shares between tenants, cancellation check); batches requests
 * and runs them; lets MessageSettler publish each outcome with publisher confirms and only then ack.
 * Requests are handed to the batcher (or a generation) only while it has room for them; everything
 * received stays unacked until it ran.
 *
 * Per message:
 * - not a task at all (not JSON, no request id) -> nack with requeue; the quorum queue's delivery
 *   limit dead-letters it after a few attempts (the last one is logged and counted);
 * - a deterministic failure (malformed task, bad input, model or processor error) -> a failed
 *   InferenceResult to the results queue, then ack: the request ends and its quota is settled;
 * - success -> the next segment's task to the next model's queue, or the InferenceResult;
 * - a publish that is not confirmed -> nack with requeue (redelivery is idempotent: message id =
 *   request id, and the collector upserts);
 * - a task its tenant cancelled (DELETE /v1/requests/{id}; checked by TaskAdmission, where every
 *   task is accepted, whatever queue it came from) -> a cancelled InferenceResult, then ack, without
 *   running (a task of a batched model starts while its check is out; if it was cancelled, its
 *   outputs are dropped and it ends the same way).
 */
import { markStage, tracing } from "../shared/stage-trace.js";
import type { ConfirmChannel, ConsumeMessage } from "amqplib";
import { performance } from "node:perf_hooks";
import { names, type InferenceTask, providerArguments } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { DecodedTensor } from "../shared/tensors.js";
import { concatRows, splitRows } from "./batch-tensors.js";
import { Batcher } from "./batcher.js";
import type { FairClass } from "./fair-scheduler.js";
import { padAxisOf, prepareRequest, type PreparedRequest, type ServedModel } from "./segment-runner.js";
import type { CancelCheck } from "./cancel-marks.js";
import { Cancellations } from "./engines/llama/cancel-listener.js";
import { MessageSettler } from "./message-settler.js";
import { publishOutcomes, type OutcomeContext, type RanRequest } from "./batch-outcomes.js";
import { runGeneration } from "./engines/llama/run-generation.js";
import { toStepError } from "./step-error.js";
import { TaskAdmission } from "./task-admission.js";
import { cancelledResult, MalformedTaskError, parseTask } from "./task-codec.js";

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
  /** Called for each task as its message arrives, before it waits for its turn (tests, measurements). */
  onReceived?: (task: InferenceTask) => void;
  /** Called for each task as it is accepted for running, in that order (tests, measurements). */
  onAccepted?: (task: InferenceTask) => void;
  /** Called with a batch's tasks as the model starts running them (tests, measurements). */
  onBatchStarted?: (tasks: InferenceTask[]) => void;
  /** Whether the tenant cancelled a task (none: nothing is ever cancelled). */
  cancelCheck?: CancelCheck;
}

interface Item {
  message: ConsumeMessage;
  request: PreparedRequest;
  /** Its tenant's priority: the batcher starts higher ones first. */
  priority: number;
  /** When it was handed to the batcher (performance.now()), until its first run: that wait counts as queued. */
  batchedAt?: number;
  /** Set when the task started before its cancellation check was answered (TaskAdmission). */
  cancelled?: Promise<boolean>;
}

/** Consumes one model queue; see the module comment for the life of a message. */
export class ModelConsumer {
  private readonly consumerTags = new Map<string, string>();
  private stopped = false;
  private onCancelled: () => void = () => undefined;
  private readonly admission: TaskAdmission;
  /** Generations running now (generative models). */
  private generating = 0;
  private readonly settler: MessageSettler;
  private readonly outcomes: OutcomeContext;
  private readonly batcher: Batcher<Item>;
  /** Generations clients gave up on (generative models only). */
  private readonly cancellations = new Cancellations();

  /** The batch size in force (batching reloads change it). */
  private batchLimit: number;

  constructor(private readonly options: ConsumerOptions) {
    const { runner } = options.model;
    this.batchLimit = this.limits(runner.config.batching).maxBatchSize;
    this.settler = new MessageSettler(options);
    this.outcomes = { ...options, settler: this.settler };
    this.admission = new TaskAdmission({
      classOf: options.classOf,
      hasRoom: (checking, priority) => this.hasRoom(checking, priority),
      cancelCheck: options.cancelCheck,
      onAccepted: (task) => options.onAccepted?.(task),
      run: ({ message, task }, queuedMs, cancelled) => this.run(message, task, queuedMs, cancelled),
      startsBeforeCheck: () => !runner.generator,
      skip: ({ message, task }) => this.skipCancelled(message, task),
      requeue: (message, error) => this.settler.requeue(message, error),
    });
    this.batcher = new Batcher<Item>({
      ...this.limits(runner.config.batching),
      rowsOf: (item) => item.request.rows,
      keyOf: (item) => item.request.key,
      priorityOf: (item) => item.priority,
      run: (items) => this.runBatch(items),
      onTaken: () => this.admission.admit(),
      onError: (error, items) => {
        options.log.error(
          { err: error, count: items.length },
          "batch runner failed; requeueing its messages",
        );
        for (const item of items) this.settler.requeue(item.message, error);
      },
    });
  }

  /** Messages received and not yet acked or nacked. */
  get inFlight(): number {
    return this.settler.unacked;
  }

  /** Applies new batching limits from a reloaded config. */
  configure(batching: { maxBatchSize: number; maxDelayMs: number }): void {
    this.batchLimit = this.limits(batching).maxBatchSize;
    this.batcher.configure(this.limits(batching));
    this.admission.admit();
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
    await this.admission.hold(async () => {
      for (const queue of this.options.queues) await this.consume(queue);
      await new Promise((resolve) => setImmediate(resolve));
    });
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
      await this.admission.drain();
      await this.batcher.flush();
      await this.settler.idle();
    })();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const ok = await Promise.race([drained.then(() => true), timedOut]);
    clearTimeout(timer);
    if (!ok)
      log.warn({ unacked: this.settler.unacked }, "drain timed out; unacked messages return to the queue");
    return ok;
  }

  private limits(batching: { maxBatchSize: number; maxDelayMs: number }) {
    const batchable = this.options.model.runner.batchable;
    return { maxBatchSize: batchable ? batching.maxBatchSize : 1, maxDelayMs: batching.maxDelayMs };
  }

  private onMessage(message: ConsumeMessage): void {
    this.settler.received(message);
    let task: InferenceTask;
    try {
      task = parseTask(message.content);
      markStage(task.requestId, "w.delivered");
      this.options.onReceived?.(task);
    } catch (error) {
      if (error instanceof MalformedTaskError) return this.settler.fail(message, error.task, error);
      return this.settler.requeue(message, error);
    }
    // While stopping, everything received runs at once (see stop).
    if (this.stopped) return this.admission.accept({ message, task });
    this.admission.push({ message, task });
  }

  /**
   * Room for more started requests: one batch waiting beside the running one, or free sequences.
   * Tasks whose cancellation check is still out (`checking`) will join the batcher or start a
   * generation. A task of a higher priority than some waiting in the batcher also gets room for a
   * second batch: the batcher starts it ahead of them, in the next batch, instead of it waiting for
   * that batch to run first.
   */
  private hasRoom(checking: number, priority: number): boolean {
    const { runner } = this.options.model;
    if (runner.generator) return this.generating + checking < runner.config.batching.maxBatchSize;
    const waiting = this.batcher.pending + checking;
    if (waiting < this.batchLimit) return true;
    return waiting < 2 * this.batchLimit && this.batcher.overtakes(priority);
  }

  /** A task the tenant cancelled: its cancelled result, then ack; the model never sees it. */
  private skipCancelled(message: ConsumeMessage, task: InferenceTask): void {
    this.options.log.info({ requestId: task.requestId }, "skipping a request its tenant cancelled");
    const queue = names(this.options.prefix).resultsQueue;
    this.settler.publishThenAck(message, queue, cancelledResult(task), task.requestId);
  }

  /** Runs an accepted task: generates, or prepares it and hands it to the batcher. */
  private run(
    message: ConsumeMessage,
    task: InferenceTask,
    queuedMs: number,
    cancelled?: Promise<boolean>,
  ): void {
    const { model, log } = this.options;
    if (model.runner.generator) return this.generate(message, task, queuedMs);
    let request: PreparedRequest;
    try {
      request = prepareRequest(model, task, queuedMs);
    } catch (error) {
      const failure = toStepError(error, "invalid_input", "preparing the request");
      return this.unlessCancelled({ message, task, cancelled }, () =>
        this.settler.fail(message, task, failure),
      );
    }
    log.debug({ requestId: task.requestId, rows: request.rows }, "request waiting for a batch");
    markStage(task.requestId, "w.batched");
    const { priority } = this.options.classOf(task.tenant);
    this.batcher.add({ message, request, cancelled, priority, batchedAt: performance.now() });
  }

  /**
   * Settles a task that started before its cancellation check was answered once the answer is in:
   * `settle` if it was not cancelled, else the cancelled result (its outputs dropped), and a failed
   * check requeues it as before. Without a pending check, settles at once.
   */
  private unlessCancelled(
    {
      message,
      task,
      cancelled,
    }: { message: ConsumeMessage; task: InferenceTask; cancelled?: Promise<boolean> },
    settle: () => void,
  ): void {
    if (!cancelled) return settle();
    this.settler.track(
      cancelled.then(
        (yes) => (yes ? this.skipCancelled(message, task) : settle()),
        (error: unknown) => this.settler.requeue(message, error),
      ),
    );
  }

  /** Runs one batch; on a model error with several requests, retries each alone to isolate it. */
  private async runBatch(items: Item[]): Promise<void> {
    const { model, metrics, log } = this.options;
    const { runner } = model;
    let perItem: DecodedTensor[][];
    const started = performance.now();
    for (const item of items) {
      // Queued until the model first starts it: the broker's wait, then the batcher's (not
      // pre-processing). A failed batch's items, retried alone, are not counted again.
      if (item.batchedAt !== undefined) {
        item.request.queuedMs += Math.max(0, started - item.batchedAt);
        item.batchedAt = undefined;
        metrics.queueWait.observe({ model: runner.config.name }, item.request.queuedMs / 1000);
      }
      if (tracing) markStage(item.request.task.requestId, "w.run");
    }
    this.options.onBatchStarted?.(items.map((item) => item.request.task));
    try {
      const feeds = runner.tensors.inputs.map((input) =>
        concatRows(
          items.map((item) => item.request.feeds.find((f) => f.name === input.name)!),
          padAxisOf(runner),
          runner.allocate,
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
        for (const item of items) this.settler.requeue(item.message, broken);
        return this.options.onBroken(broken);
      }
      if (items.length > 1) {
        log.warn({ err: error, batchSize: items.length }, "batch failed; running its requests one by one");
        for (const item of items) await this.runBatch([item]);
        return;
      }
      const item = items[0]!;
      const failure = toStepError(error, "model_error", "running the model");
      return this.unlessCancelled({ ...item, task: item.request.task }, () =>
        this.settler.fail(item.message, item.request.task, failure),
      );
    }
    const inferMs = performance.now() - started;
    metrics.inferenceDuration.observe({ model: runner.config.name }, inferMs / 1000);
    metrics.batchSize.observe({ model: runner.config.name }, items.length);
    // Post-process on the next turn: by then the batcher has handed the next batch to the model
    // thread, so decoding and publishing this one overlap with its run. Tracked for drain.
    const post = new Promise<void>((resolve) => setImmediate(resolve)).then(async () => {
      const run = { inferMs, batchSize: items.length };
      // Tasks that started before their cancellation check wait for it here (most were answered
      // while the batch ran), so the batch's final results still leave together: cancelled ones end
      // cancelled, a failed check requeues its task.
      const checks = await Promise.allSettled(items.map((item) => item.cancelled ?? false));
      const go: RanRequest[] = [];
      items.forEach((item, i) => {
        const check = checks[i]!;
        if (check.status === "rejected") this.settler.requeue(item.message, check.reason);
        else if (check.value) this.skipCancelled(item.message, item.request.task);
        else go.push({ ...item, outputs: perItem[i]! });
      });
      publishOutcomes(this.outcomes, go, run);
    });
    this.settler.track(post);
  }

  /**
   * A generative model's request: generates in a sequence of its own (up to maxBatchSize side by
   * side, bounded by the prefetch), relays text to the answering gateway while it comes, then
   * publishes the result and acks like every other request. Tracked for drain.
   */
  private generate(message: ConsumeMessage, task: InferenceTask, queuedMs: number): void {
    const { model, channel, metrics, log } = this.options;
    const name = model.runner.config.name;
    metrics.queueWait.observe({ model: name }, queuedMs / 1000);
    const running = runGeneration(
      { engine: model.runner.generator!, channel, worker: model.worker, cancellations: this.cancellations },
      task,
      queuedMs,
    )
      .then(({ result, announce }) => {
        metrics.inferenceDuration.observe({ model: name }, result.steps.at(-1)!.inferMs / 1000);
        metrics.tokensProcessed.inc({ model: name, tenant: task.tenant }, result.outputTokens);
        const queue = names(this.options.prefix).resultsQueue;
        this.settler.publishThenAck(message, queue, result, task.requestId, announce, task.replyTo);
      })
      .catch((error: unknown) => {
        const broken = model.runner.failure();
        if (broken) {
          this.settler.requeue(message, broken);
          return this.options.onBroken(broken);
        }
        log.debug({ err: error, requestId: task.requestId }, "generation failed");
        this.settler.fail(message, task, toStepError(error, "model_error", "generating"));
      })
      .finally(() => {
        this.generating--;
        this.admission.admit();
      });
    this.generating++;
    this.settler.track(running);
  }
}

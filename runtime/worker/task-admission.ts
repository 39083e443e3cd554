/**
 * When and in which order a worker starts the tasks it has received. Tasks from the model's queue
 * and every tenant lane (runtime/shared/lanes.ts) wait here, unacked; the FairScheduler picks the
 * next one (priority with a floor, then weighted fair shares between tenants), and only while the
 * model has room for it, so the choice is made as late as possible.
 *
 * Accepting a task measures its queue wait and asks whether its tenant cancelled it (DELETE
 * /v1/requests/{id}; asked here, where every task is accepted, whatever queue it came from): a
 * cancelled task is skipped without running. A task of a batched model starts while its check is
 * out, so no request waits for a Redis round trip before the model (at a moderate rate that wait was
 * on most requests' path: bench/README.md "Eighth round"); its outcome waits for the check, and if
 * it was cancelled its outputs are dropped and it ends `cancelled` all the same (only its row of a
 * batch is lost). Tasks reach the model in the order they are accepted either way. A generation
 * (long, holds a sequence) is checked first.
 */
import { markStage } from "../shared/stage-trace.js";
import type { ConsumeMessage } from "amqplib";
import type { InferenceTask } from "../shared/contracts/index.js";
import type { CancelCheck } from "./cancel-marks.js";
import { FairScheduler, type FairClass } from "./fair-scheduler.js";
import { ENQUEUED_AT_HEADER } from "./task-codec.js";

/** A received task waiting for its turn. */
export interface Received {
  message: ConsumeMessage;
  task: InferenceTask;
}

/** Options of a {@link TaskAdmission}. */
export interface TaskAdmissionOptions {
  /** Priority and weight of a tenant. */
  classOf: (tenant: string) => FairClass;
  /**
   * Whether the model has room for one more task of `priority` (the next one's), besides `checking`
   * accepted ones still being checked.
   */
  hasRoom: (checking: number, priority: number) => boolean;
  /** Whether the tenant cancelled a task (none: nothing is ever cancelled). */
  cancelCheck?: CancelCheck;
  /** Called for each task as it is accepted, in that order. */
  onAccepted: (task: InferenceTask) => void;
  /**
   * Runs an accepted task its tenant did not cancel; or, with `cancelled`, a task that starts
   * before its check is answered: publish its outcome only once `cancelled` resolves false (true:
   * skip it; a rejection: requeue it, as `requeue`).
   */
  run: (received: Received, queuedMs: number, cancelled?: Promise<boolean>) => void;
  /** Whether a task may start before its check is answered (a batched model; not a generation). */
  startsBeforeCheck?: () => boolean;
  /** Ends a task its tenant cancelled, without running it. */
  skip: (received: Received) => void;
  /** Gives a message back to its queue (the cancellation check itself failed). */
  requeue: (message: ConsumeMessage, error: unknown) => void;
}

/** Holds received tasks and accepts them in the FairScheduler's order while the model has room. */
export class TaskAdmission {
  private readonly fair = new FairScheduler<Received>();
  /** While set, nothing is accepted (see {@link hold}). */
  private holding = false;
  /** Accepted tasks waiting for the cancellation check; they count against the room. */
  private readonly checking = new Set<Promise<void>>();

  constructor(private readonly options: TaskAdmissionOptions) {}

  /** Queues a received task for its turn, then accepts what there is room for. */
  push(received: Received): void {
    this.fair.push(this.options.classOf(received.task.tenant), received, rowsOf(received.task));
    this.admit();
  }

  /**
   * Accepts nothing while `during` runs (the consumers are being registered: otherwise the first
   * lane to deliver would take the first batches alone), then what there is room for.
   */
  async hold(during: () => Promise<void>): Promise<void> {
    this.holding = true;
    try {
      await during();
    } finally {
      this.holding = false;
    }
    this.admit();
  }

  /** Accepts the tasks the scheduler picks while there is room for them. */
  admit(): void {
    if (this.holding) return;
    const hasRoom = (priority: number) => this.options.hasRoom(this.checking.size, priority);
    for (let next = this.fair.next(hasRoom); next; next = this.fair.next(hasRoom)) this.accept(next);
  }

  /**
   * Accepts everything waiting at once, as before lanes (fairness no longer matters while draining),
   * and resolves when every cancellation check is done.
   */
  async drain(): Promise<void> {
    for (const received of this.fair.drain()) this.accept(received);
    await Promise.allSettled([...this.checking]);
  }

  /**
   * The one place where a received task is accepted for running: from here on it is the model's
   * (queue wait measured; unless its tenant cancelled it, handed to `run`). Also called directly,
   * out of turn, for tasks received while stopping.
   */
  accept({ message, task }: Received): void {
    markStage(task.requestId, "w.accepted");
    const header = Number(message.properties.headers?.[ENQUEUED_AT_HEADER]);
    const enqueuedAt = Number.isFinite(header) && header > 0 ? header : task.submittedAt;
    const queuedMs = Math.max(0, Date.now() - enqueuedAt);
    this.options.onAccepted(task);
    const check = this.options.cancelCheck;
    if (!check) return this.options.run({ message, task }, queuedMs);
    // Not while earlier tasks wait for their checks: this one would start ahead of them.
    if (this.checking.size === 0 && this.options.startsBeforeCheck?.()) {
      let answer!: { resolve: (yes: boolean) => void; reject: (error: unknown) => void };
      const cancelled = new Promise<boolean>((resolve, reject) => (answer = { resolve, reject }));
      cancelled.catch(() => undefined); // the run's outcome waits for it and handles a rejection
      this.options.run({ message, task }, queuedMs, cancelled);
      // Asked after the run is handed over, so the check's own work does not delay the model's start.
      check.isCancelled(task).then(answer.resolve, answer.reject);
      return;
    }
    const checked = check
      .isCancelled(task)
      .then((cancelled) =>
        cancelled ? this.options.skip({ message, task }) : this.options.run({ message, task }, queuedMs),
      )
      .catch((error: unknown) => this.options.requeue(message, error))
      .finally(() => {
        this.checking.delete(checked);
        this.admit();
      });
    this.checking.add(checked);
  }
}

/** What starting a task costs the model, for fair shares: its rows (dimension 0 of its first input). */
function rowsOf(task: InferenceTask): number {
  const rows = task.inputs[0]?.shape[0];
  return rows !== undefined && rows > 0 ? rows : 1;
}

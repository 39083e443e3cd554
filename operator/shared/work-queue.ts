/**
 * A keyed work queue for reconcilers: one run per key at a time, duplicate adds collapse, failed
 * runs are retried with exponential backoff up to a bound, and a periodic resync re-adds every
 * known key. Pepr's Reconcile binding only feeds keys in; it has no retry or resync of its own.
 */
import { isRetryable } from "./errors.js";

export interface WorkQueueOptions {
  /** Keys reconciled at once (different keys only). */
  concurrency?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Failed runs of one key before onGiveUp; the key is retried again only on its next add. */
  maxAttempts?: number;
}

export class WorkQueue {
  readonly #handler: (key: string) => Promise<void>;
  readonly #onGiveUp: (key: string, error: unknown) => void | Promise<void>;
  readonly #options: Required<WorkQueueOptions>;
  readonly #pending: string[] = [];
  readonly #queued = new Set<string>();
  readonly #running = new Set<string>();
  /** Keys added again while running: run once more afterwards. */
  readonly #dirty = new Set<string>();
  readonly #attempts = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  #idleWaiters: Array<() => void> = [];
  #stopped = false;

  constructor(
    handler: (key: string) => Promise<void>,
    onGiveUp: (key: string, error: unknown) => void | Promise<void>,
    options: WorkQueueOptions = {},
  ) {
    this.#handler = handler;
    this.#onGiveUp = onGiveUp;
    this.#options = { concurrency: 4, baseDelayMs: 250, maxDelayMs: 30_000, maxAttempts: 8, ...options };
  }

  /**
   * Queues a key now (a pending retry of it is superseded). `urgent` puts it ahead of the keys
   * already waiting (moving it up if it waits too): for a change that only needs a quick look,
   * such as a child's status, which should not wait behind a burst of new objects.
   */
  add(key: string, urgent = false): void {
    if (this.#stopped) return;
    const timer = this.#timers.get(key);
    if (timer) {
      clearTimeout(timer);
      this.#timers.delete(key);
    }
    if (this.#running.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) {
      if (!urgent) return;
      this.#pending.splice(this.#pending.indexOf(key), 1);
    }
    this.#queued.add(key);
    if (urgent) this.#pending.unshift(key);
    else this.#pending.push(key);
    this.#pump();
  }

  /** Queues a key after a delay, unless it is added sooner. */
  addAfter(key: string, delayMs: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, delayMs);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Whether the key waits for a retry or a requeue (a timer). */
  waiting(key: string): boolean {
    return this.#timers.has(key);
  }

  /** Whether keys are queued or running now (timers for later do not count). */
  get busy(): boolean {
    return this.#pending.length > 0 || this.#running.size > 0;
  }

  /** Resolves when nothing is queued, running or waiting for a retry. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#pending.length = 0;
    this.#queued.clear();
  }

  #isIdle(): boolean {
    return this.#pending.length === 0 && this.#running.size === 0 && this.#timers.size === 0;
  }

  #pump(): void {
    while (this.#running.size < this.#options.concurrency && this.#pending.length > 0) {
      const key = this.#pending.shift()!;
      this.#queued.delete(key);
      this.#running.add(key);
      void this.#run(key);
    }
    if (this.#isIdle()) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  async #run(key: string): Promise<void> {
    try {
      await this.#handler(key);
      this.#attempts.delete(key);
    } catch (error) {
      const attempts = (this.#attempts.get(key) ?? 0) + 1;
      if (isRetryable(error) && attempts < this.#options.maxAttempts && !this.#dirty.has(key)) {
        this.#attempts.set(key, attempts);
        const delay = Math.min(this.#options.maxDelayMs, this.#options.baseDelayMs * 2 ** (attempts - 1));
        // Jitter spreads retries of many keys failing on one outage.
        this.addAfter(key, delay * (0.5 + Math.random() / 2));
      } else if (!this.#dirty.has(key)) {
        this.#attempts.delete(key);
        await Promise.resolve(this.#onGiveUp(key, error)).catch(() => undefined);
      }
    } finally {
      this.#running.delete(key);
      if (this.#dirty.delete(key)) this.add(key);
      this.#pump();
    }
  }
}

/**
 * Dynamic batching: collects requests and hands them to one runner, one batch at a time.
 *
 * A batch is the first waiting request plus later compatible ones (same key), up to `maxBatchSize`
 * rows. It starts as soon as it is full, or when the oldest waiting request has waited `maxDelayMs`;
 * while the runner is busy, requests keep queueing, so under load batches fill up without waiting
 * and at low load a lone request waits at most `maxDelayMs`. Incompatible requests are never mixed.
 * Runs never overlap: concurrent runs would only fight over the same cores.
 *
 * "First" is arrival order, except that a request of a higher priority (its tenant's) goes before
 * lower ones that arrived earlier, and a request passed over that way once goes first the next time
 * (it is "overdue"): a higher priority overtakes by at most one batch. With one priority this is
 * plain arrival order (a request left out for another key is overdue, and also the oldest).
 */

/** Options of a {@link Batcher}. */
export interface BatcherOptions<T> {
  maxBatchSize: number;
  maxDelayMs: number;
  /** Rows an item adds to a batch (dimension 0 of its inputs). */
  rowsOf: (item: T) => number;
  /** Items with equal keys may share a batch. */
  keyOf: (item: T) => string;
  /** Higher goes first (see the module comment); default: one priority for all. */
  priorityOf?: (item: T) => number;
  /** Runs one batch; must handle its own errors per item. */
  run: (items: T[]) => Promise<void>;
  /** Called if `run` rejects anyway (a bug); the batch's items are then lost to the caller. */
  onError: (error: unknown, items: T[]) => void;
  /** Called when a batch has been taken from the waiting items (the caller may add more). */
  onTaken?: () => void;
  now?: () => number;
}

interface Waiting<T> {
  item: T;
  key: string;
  rows: number;
  priority: number;
  since: number;
  /** A later item went into a batch before this one: it goes first now. */
  overdue: boolean;
}

/** Groups items into batches and runs them one at a time. */
export class Batcher<T> {
  private readonly waiting: Waiting<T>[] = [];
  private running: Promise<void> | undefined;
  private cancelTimer: (() => void) | undefined;
  private flushing = false;
  private idleWaiters: (() => void)[] = [];
  private readonly now: () => number;

  constructor(private options: BatcherOptions<T>) {
    this.now = options.now ?? Date.now;
  }

  /** Changes the batch limits (config reload); applies from the next batch. */
  configure(limits: { maxBatchSize: number; maxDelayMs: number }): void {
    this.options = { ...this.options, ...limits };
    this.schedule();
  }

  /** Nothing running and nothing waiting: an item added now starts on the next turn. */
  get idle(): boolean {
    return !this.running && this.waiting.length === 0;
  }

  /** Items waiting, not counting a batch that is running. */
  get pending(): number {
    return this.waiting.length;
  }

  /** Whether an item of `priority` would go before some waiting item (one not overdue) of a lower one. */
  overtakes(priority: number): boolean {
    return this.waiting.some((w) => !w.overdue && w.priority < priority);
  }

  /** Adds an item; it runs within maxDelayMs unless the runner is busy. */
  add(item: T): void {
    const { rowsOf, keyOf, priorityOf } = this.options;
    this.waiting.push({
      item,
      key: keyOf(item),
      rows: rowsOf(item),
      priority: priorityOf?.(item) ?? 0,
      since: this.now(),
      overdue: false,
    });
    this.schedule();
  }

  /** Runs everything waiting without further delay; resolves when nothing is waiting or running. */
  async flush(): Promise<void> {
    this.flushing = true;
    try {
      this.schedule();
      while (this.running || this.waiting.length > 0) {
        await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
      }
    } finally {
      this.flushing = false;
    }
  }

  /** The waiting items in the order they go: overdue first, then by priority, each in arrival order. */
  private inTurn(): Waiting<T>[] {
    const first = this.waiting[0]!.priority;
    if (this.waiting.every((w) => !w.overdue && w.priority === first)) return this.waiting;
    // Array.prototype.sort is stable: arrival order holds within each group.
    return [...this.waiting].sort((a, b) => Number(b.overdue) - Number(a.overdue) || b.priority - a.priority);
  }

  /** Picks the next batch: the first item in turn and compatible later ones, up to maxBatchSize rows. */
  private take(): { items: Waiting<T>[]; full: boolean } {
    const [lead, ...rest] = this.inTurn();
    const items = [lead!];
    let rows = lead!.rows;
    for (const next of rest) {
      if (rows >= this.options.maxBatchSize) break;
      if (next.key === lead!.key && rows + next.rows <= this.options.maxBatchSize) {
        items.push(next);
        rows += next.rows;
      }
    }
    return { items, full: rows >= this.options.maxBatchSize };
  }

  /**
   * Starts the next batch when it is due, else arms a timer for when it will be. Right after a run
   * the next batch starts synchronously, so the model is not left idle while the caller
   * post-processes the previous batch; otherwise it starts on the next turn of the event loop, so
   * messages that arrived in the same socket read still join it.
   */
  private schedule(afterRun = false): void {
    if (this.running) return;
    this.cancelTimer?.();
    this.cancelTimer = undefined;
    if (this.waiting.length === 0) {
      for (const resolve of this.idleWaiters.splice(0)) resolve();
      return;
    }
    const { full } = this.take();
    const waited = this.now() - this.waiting[0]!.since;
    if (full || this.flushing || waited >= this.options.maxDelayMs) {
      if (afterRun) return this.start();
      const immediate = setImmediate(() => this.start());
      this.cancelTimer = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(() => this.start(), this.options.maxDelayMs - waited);
      this.cancelTimer = () => clearTimeout(timer);
    }
  }

  private start(): void {
    this.cancelTimer = undefined;
    if (this.running || this.waiting.length === 0) return;
    const { items } = this.take();
    const taken = new Set(items);
    // Items that a later arrival went ahead of are overdue: they go first next time.
    const lastTaken = this.waiting.findLastIndex((w) => taken.has(w));
    this.waiting.forEach((w, i) => {
      if (i < lastTaken && !taken.has(w)) w.overdue = true;
    });
    this.waiting.splice(0, this.waiting.length, ...this.waiting.filter((w) => !taken.has(w)));
    const batch = items.map((w) => w.item);
    this.running = this.options
      .run(batch)
      .catch((error: unknown) => this.options.onError(error, batch))
      .finally(() => {
        this.running = undefined;
        this.schedule(true);
      });
    this.options.onTaken?.();
  }
}

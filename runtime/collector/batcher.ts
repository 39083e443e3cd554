/**
 * Groups items into batches of at most `maxSize`, handing a batch over when it is full or when its
 * first item has waited `maxDelayMs`. Batches are handled one at a time, in arrival order, which is
 * what lets the collector acknowledge a whole batch with one multiple-ack.
 */
export class Batcher<T> {
  private items: T[] = [];
  private timer: NodeJS.Timeout | undefined;
  private due = false;
  private running: Promise<void> | undefined;

  /**
   * @param handle processes one batch; it should not throw (a throw is passed to `onError` and the
   *   batch is considered done).
   */
  constructor(
    private readonly maxSize: number,
    private readonly maxDelayMs: number,
    private readonly handle: (batch: T[]) => Promise<void>,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Items waiting for a batch. */
  get size(): number {
    return this.items.length;
  }

  /** Adds one item; a full batch is handed over right away. */
  add(item: T): void {
    this.items.push(item);
    if (this.items.length >= this.maxSize) this.trigger();
    else this.timer ??= setTimeout(() => this.trigger(), this.maxDelayMs);
  }

  /** Hands over everything that waits and resolves once every batch has been handled. */
  async flush(): Promise<void> {
    while (this.items.length > 0 || this.running) {
      if (this.items.length > 0) this.trigger();
      await this.running;
    }
  }

  /** Forgets waiting items (their deliveries died with their channel and will be redelivered). */
  discard(): void {
    this.items = [];
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private trigger(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.due = true;
    if (this.running) return; // the running loop sees `due` and takes the batch next
    const run = this.run();
    this.running = run;
    void run.finally(() => {
      this.running = undefined;
      // A trigger that landed between the loop's last check and now would otherwise be lost.
      if (this.due && this.items.length > 0) this.trigger();
    });
  }

  private async run(): Promise<void> {
    while (this.due && this.items.length > 0) {
      const batch = this.items.splice(0, this.maxSize);
      // What is left is due at once only if it already fills a batch; otherwise it gets its own timer.
      this.due = this.items.length >= this.maxSize;
      if (!this.due && this.items.length > 0) {
        this.timer ??= setTimeout(() => this.trigger(), this.maxDelayMs);
      }
      try {
        await this.handle(batch);
      } catch (error) {
        this.onError(error);
      }
    }
  }
}

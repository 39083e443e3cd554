/**
 * One Redis subscriber per gateway process on the completion channel, fanning CompletionNotices
 * (one message per collector batch) out to in-memory waiters by request id. Subscribing happens
 * once at start-up, so "subscribe first, then read state" is simply: register the waiter, then read.
 */
import { Redis } from "ioredis";
import type { CompletionNotice } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";

/** A registered interest in one request's completion. */
export interface CompletionWaiter {
  /** Resolves with the notice; never rejects (a cancelled waiter simply never resolves). */
  notice: Promise<CompletionNotice>;
  cancel(): void;
}

/** Dispatches completion notices of one channel to waiters. */
export class CompletionHub {
  private readonly waiters = new Map<string, Set<(notice: CompletionNotice) => void>>();
  private subscribed = false;

  private constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly log: Logger,
  ) {}

  /** Connects a dedicated subscriber and subscribes to `channel` (ioredis re-subscribes on reconnect). */
  static async start(redisUrl: string, channel: string, log: Logger): Promise<CompletionHub> {
    const subscriber = new Redis(redisUrl, {
      connectionName: "turnpike-gateway-completions",
      lazyConnect: true,
    });
    const hub = new CompletionHub(subscriber, channel, log);
    subscriber.on("message", (ch: string, message: string) => {
      if (ch === channel) hub.dispatch(message);
    });
    subscriber.on("ready", () => (hub.subscribed = true));
    subscriber.on("close", () => (hub.subscribed = false));
    subscriber.on("error", (error: Error) => log.warn({ err: error }, "completion subscriber error"));
    try {
      await subscriber.connect();
      await subscriber.subscribe(channel);
    } catch (cause) {
      subscriber.disconnect();
      throw new Error(`subscribing to Redis channel ${channel}`, { cause });
    }
    hub.subscribed = true;
    return hub;
  }

  /** True while the subscription is live (notices may be missed otherwise). */
  get ready(): boolean {
    return this.subscribed && this.subscriber.status === "ready";
  }

  /** Number of requests someone is waiting for. */
  get size(): number {
    return this.waiters.size;
  }

  /** Registers interest in `requestId`; call cancel() when no longer interested. */
  wait(requestId: string): CompletionWaiter {
    const id = requestId.toLowerCase();
    let listener!: (notice: CompletionNotice) => void;
    const notice = new Promise<CompletionNotice>((resolve) => (listener = resolve));
    let set = this.waiters.get(id);
    if (!set) this.waiters.set(id, (set = new Set()));
    set.add(listener);
    const cancel = () => {
      const current = this.waiters.get(id);
      if (!current) return;
      current.delete(listener);
      if (current.size === 0) this.waiters.delete(id);
    };
    return { notice, cancel };
  }

  /** Unsubscribes and disconnects. */
  async close(): Promise<void> {
    this.waiters.clear();
    await this.subscriber.quit().catch(() => this.subscriber.disconnect());
  }

  /** One message is a batch of notices (a JSON array) or a single one. */
  private dispatch(message: string): void {
    let parsed: CompletionNotice | CompletionNotice[];
    try {
      parsed = JSON.parse(message) as CompletionNotice | CompletionNotice[];
    } catch {
      this.log.warn({ message: message.slice(0, 200) }, "ignoring a completion notice that is not JSON");
      return;
    }
    if (this.waiters.size === 0) return;
    for (const notice of Array.isArray(parsed) ? parsed : [parsed]) {
      if (typeof notice?.requestId !== "string") continue;
      const id = notice.requestId.toLowerCase();
      const set = this.waiters.get(id);
      if (!set) continue;
      this.waiters.delete(id);
      for (const listener of set) listener(notice);
    }
  }
}

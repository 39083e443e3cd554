/** Retry with capped exponential backoff, for the dependencies the collector and the worker must outlast. */
import type { Logger } from "./logger.js";

/** Delay before retry `attempt` (0-based): 100 ms doubling to 5 s, with jitter so replicas spread out. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(5_000, 100 * 2 ** Math.min(attempt, 16));
  return Math.round(ceiling * (0.5 + random() / 2));
}

/** Resolves after `ms`, or rejects as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Runs `fn` until it succeeds. Only an aborted `signal` (a hard stop) or an error `isFinal` recognises
 * (one no retry can fix) ends the retries: the collector would rather wait out an outage than
 * acknowledge a result it has not made durable.
 */
export async function retryUntilDone<T>(
  what: string,
  fn: () => Promise<T>,
  log: Logger,
  signal: AbortSignal,
  isFinal: (error: unknown) => boolean = () => false,
): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (signal.aborted || isFinal(error)) throw error;
      const delay = backoffMs(attempt);
      log.warn({ err: error, attempt: attempt + 1, retryInMs: delay }, `${what} failed; retrying`);
      await sleep(delay, signal);
    }
  }
}

/**
 * A short settle window for an InferenceModel's status after its reconcile applied a new worker
 * Deployment whose status is watched. The rollout it just started changes the status again within
 * moments (the Deployment controller reports the new generation, then available replicas), and
 * every status write is a full update of the InferenceModel in the apiserver: with 1,000 models
 * created at once, the intermediate "Progressing" write was half of all status writes. While the
 * window is open that intermediate status is not written; the final one is, as soon as the
 * rollout completes, or the Progressing one when the window closes. Meanwhile the status says
 * what is true: its observedGeneration is still the older one (or absent), i.e. the operator has
 * not reported on this spec yet. A problem (Degraded) is never held back.
 */

/** How long a new rollout's first "Progressing" status may wait for the rollout to complete. */
export const STATUS_SETTLE_MS = 2_000;
/** A reconcile started by the window's closing timer may run a little after it closed. */
const TIMER_SLACK_MS = 1_000;

/** What a reconcile does with the status it computed. */
export type SettleDecision = "write" | "hold";

/**
 * Pure: hold the status while the window is open and the rollout goes on without a problem;
 * otherwise write it.
 */
export function settleDecision(input: {
  /** ms left of the model's window at its current generation (0: none open). */
  windowLeftMs: number;
  progressing: boolean;
  problem: boolean;
}): SettleDecision {
  return input.windowLeftMs > 0 && input.progressing && !input.problem ? "hold" : "write";
}

/**
 * The open windows by model (namespace/name), each for one generation, with what the full
 * reconcile that opened it observed (`T`: the queue's depth), for the status-only ones after it.
 */
export class StatusSettle<T> {
  readonly #windows = new Map<string, { generation: number; until: number; seen: T }>();

  /** Opens the window for `generation` (the reconcile just applied its Deployment). */
  open(key: string, generation: number, seen: T, now = Date.now()): void {
    this.#windows.set(key, { generation, until: now + STATUS_SETTLE_MS, seen });
  }

  /** What the reconcile that opened the window at `generation` observed. */
  seen(key: string, generation: number): T | undefined {
    const window = this.#windows.get(key);
    return window?.generation === generation ? window.seen : undefined;
  }

  /** ms left of the window at `generation` (0 when none is open, or it is for another generation). */
  left(key: string, generation: number, now = Date.now()): number {
    const window = this.#windows.get(key);
    if (!window || window.generation !== generation) return 0;
    return Math.max(0, window.until - now);
  }

  /**
   * Whether a reconcile may only bring the status up to date: its last full reconcile applied this
   * generation's children without a problem moments ago (also when the window's own timer runs it).
   */
  settling(key: string, generation: number, now = Date.now()): boolean {
    const window = this.#windows.get(key);
    return !!window && window.generation === generation && now < window.until + TIMER_SLACK_MS;
  }

  close(key: string): void {
    this.#windows.delete(key);
  }
}

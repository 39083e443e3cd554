/**
 * Which waiting request a worker starts next, when several tenants have work for its model.
 *
 * The rule, in two levels:
 * 1. Priority, strict with a floor: the next request comes from the highest priority that has work
 *    waiting, except that a priority which has had work waiting while `floorEvery - 1` requests in a
 *    row went to others gets the next one (two due at once: the lower first, the other right after).
 *    So with the default 10, waiting `low` work gets at least one start in every 10 against one
 *    other priority, in every 11 against two, whatever they send.
 * 2. Within one priority, weighted fair queueing between tenants (start-time fair queueing): each
 *    tenant has a virtual time that advances by cost / weight per start, and the tenant with the
 *    smallest one goes next. A tenant that had nothing waiting joins at the current virtual time,
 *    so idling earns no credit. Over any window in which tenants stay backlogged, their starts (in
 *    cost units) are proportional to their weights, within one request each.
 *
 * Each tenant's own requests keep their arrival order. Pure: no I/O, no clock.
 */

/** Default of {@link FairSchedulerOptions.floorEvery}. */
export const DEFAULT_FLOOR_EVERY = 10;

export interface FairSchedulerOptions {
  /** A waiting priority gets at least one start in every `floorEvery`; at least 2. */
  floorEvery?: number;
}

/** Where a request comes from and what it costs. */
export interface FairClass {
  tenant: string;
  /** Higher first (the runtime config's 1 = low, 5 = normal, 9 = high). */
  priority: number;
  /** Share among tenants of the same priority; at least 1. */
  weight: number;
}

interface TenantLane<T> {
  items: { item: T; cost: number }[];
  weight: number;
  /** Virtual time: the tenant's next start tag. */
  pass: number;
}

interface PriorityLevel<T> {
  tenants: Map<string, TenantLane<T>>;
  /** Virtual time of this priority: the start tag of its last start. */
  now: number;
  waiting: number;
  /** Starts that went to other priorities in a row while this one had work waiting. */
  passedOver: number;
}

/** See the module comment. */
export class FairScheduler<T> {
  private readonly levels = new Map<number, PriorityLevel<T>>();
  private readonly floorEvery: number;
  private count = 0;

  constructor(options: FairSchedulerOptions = {}) {
    this.floorEvery = Math.max(2, options.floorEvery ?? DEFAULT_FLOOR_EVERY);
  }

  /** Requests waiting. */
  get size(): number {
    return this.count;
  }

  /** Adds a request of `from`; `cost` is what starting it uses (e.g. its rows), default 1. */
  push(from: FairClass, item: T, cost = 1): void {
    let level = this.levels.get(from.priority);
    if (!level) {
      level = { tenants: new Map(), now: 0, waiting: 0, passedOver: 0 };
      this.levels.set(from.priority, level);
    }
    let lane = level.tenants.get(from.tenant);
    if (!lane) {
      lane = { items: [], weight: from.weight, pass: level.now };
      level.tenants.set(from.tenant, lane);
    }
    lane.weight = Math.max(1, from.weight);
    // Idle tenants join at the current virtual time: no credit for time spent idle.
    if (lane.items.length === 0) lane.pass = Math.max(lane.pass, level.now);
    lane.items.push({ item, cost: Math.max(1, cost) });
    level.waiting++;
    this.count++;
  }

  /**
   * Takes the request that should start next; undefined when none waits, or when `accepts` refuses
   * its priority (then nothing changes).
   */
  next(accepts?: (priority: number) => boolean): T | undefined {
    if (this.count === 0) return undefined;
    const waiting = [...this.levels.entries()].filter(([, l]) => l.waiting > 0).sort((a, b) => b[0] - a[0]);
    // The floor: the lowest priority that has been passed over too often goes first.
    const starved = [...waiting].reverse().find(([, l]) => l.passedOver >= this.floorEvery - 1);
    const [chosen, level] = starved ?? waiting[0]!;
    if (accepts && !accepts(chosen)) return undefined;
    for (const [priority, other] of waiting) if (priority !== chosen) other.passedOver++;
    level.passedOver = 0;
    return this.takeFrom(level);
  }

  /** Removes every waiting request (e.g. when their channel closed), oldest first per tenant. */
  drain(): T[] {
    const all: T[] = [];
    for (let item = this.next(); item !== undefined; item = this.next()) all.push(item);
    return all;
  }

  private takeFrom(level: PriorityLevel<T>): T {
    let best: TenantLane<T> | undefined;
    for (const lane of level.tenants.values()) {
      if (lane.items.length > 0 && (!best || lane.pass < best.pass)) best = lane;
    }
    const { item, cost } = best!.items.shift()!;
    level.now = best!.pass;
    best!.pass += cost / best!.weight;
    level.waiting--;
    this.count--;
    return item;
  }
}

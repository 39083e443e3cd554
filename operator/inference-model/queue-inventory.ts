/**
 * What RabbitMQ holds for a namespace, read in one paginated management-API listing that every
 * reconcile of the namespace shares (at most `maxAgeMs` old), instead of a GET of the model's
 * queue and one of the dead-letter queue per reconcile; and which declarations this operator made
 * since, so a queue that exists with the desired arguments is not declared again on every
 * reconcile (with 1,000 models that was 7 broker round trips and 2 management requests each).
 *
 * A queue missing from a listing taken after this operator declared it was deleted behind its
 * back (e.g. to change its arguments): it is declared again.
 */
import { modelQueueOfLane, names } from "../../runtime/shared/contracts/index.js";
import { TransientError } from "../shared/errors.js";
import { argumentDifferences, inspectQueue, managementApi, type QueueInfo } from "./queue.js";

/** A listing older than this is waited for instead of used while a new one is taken. */
const STALE_LIMIT_MS = 30_000;
/** The management API's page size limit. */
const PAGE_SIZE = 500;
/**
 * A listing is reused for at least this many times as long as the last one took, so listing stays
 * a small share of the broker's work on a large installation (while 5,000 models were created it
 * listed 80 times, and RabbitMQ spent 133 s of CPU against 78 s with this; bench/README.md,
 * "Thirteenth round"). Queue depths in status are then that much older; a declaration since the
 * listing is known either way.
 */
const LISTING_COST_FACTOR = 5;

interface Snapshot {
  /** When the listing started: anything declared later may be missing from it. */
  startedAt: number;
  queues: Map<string, QueueInfo>;
  /** How long the listing took (all of its pages). */
  durationMs: number;
  /** Tenant lanes by their model queue's name, filed at the listing (see lanesOf). */
  lanes: Map<string, QueueInfo[]>;
}

/** Files each listed lane under its model queue's name, so a reconcile reads its own in O(1). */
function lanesByModelQueue(queues: Iterable<QueueInfo>): Map<string, QueueInfo[]> {
  const lanes = new Map<string, QueueInfo[]>();
  for (const queue of queues) {
    const modelQueue = modelQueueOfLane(queue.name);
    if (modelQueue === undefined) continue;
    const filed = lanes.get(modelQueue);
    if (filed) filed.push(queue);
    else lanes.set(modelQueue, [queue]);
  }
  return lanes;
}

interface Listed {
  name: string;
  messages?: number;
  consumers?: number;
  arguments?: Record<string, unknown>;
}

/** Regex-escapes a queue-name prefix for the management API's `name` filter. */
function prefixPattern(prefix: string): string {
  return `^${prefix.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}`;
}

function argumentsKey(args: Record<string, unknown>): string {
  return JSON.stringify(args, Object.keys(args).sort());
}

export class QueueInventory {
  readonly #managementUrl: string;
  readonly #maxAgeMs: number;
  readonly #snapshots = new Map<string, Snapshot>();
  readonly #listing = new Map<string, Promise<Snapshot>>();
  /** Queue -> when this operator last declared it, and with which arguments. */
  readonly #declared = new Map<string, { at: number; arguments: string; args: Record<string, unknown> }>();
  /** Namespaces whose shared topology (exchange, bindings, shared queues) this operator declared. */
  readonly #sharedDeclared = new Map<string, number>();
  readonly #sharedDeclaring = new Map<string, Promise<void>>();
  /** What this inventory cost the broker so far (benchmarks). */
  readonly stats = { listings: 0, declarations: 0, sharedDeclarations: 0, queueGets: 0 };

  constructor(managementUrl: string, maxAgeMs = 2_000) {
    this.#managementUrl = managementUrl;
    this.#maxAgeMs = maxAgeMs;
  }

  /**
   * The namespace's queues as last listed. A listing older than maxAgeMs is refreshed in the
   * background (one at a time) while reconciles go on with it, so a slow management API (1,000
   * queues on a busy broker) delays no reconcile; only a missing or very old one is waited for.
   */
  async snapshot(namespace: string): Promise<Snapshot> {
    const current = this.#snapshots.get(namespace);
    const age = current ? Date.now() - current.startedAt : Infinity;
    const maxAge = Math.min(
      STALE_LIMIT_MS / 2,
      Math.max(this.#maxAgeMs, LISTING_COST_FACTOR * (current?.durationMs ?? 0)),
    );
    if (age < maxAge) return current!;
    const listing = this.#refresh(namespace);
    if (current && age < STALE_LIMIT_MS) {
      listing.catch(() => undefined); // the next call retries; a very old listing is waited for
      return current;
    }
    return listing;
  }

  #refresh(namespace: string): Promise<Snapshot> {
    let listing = this.#listing.get(namespace);
    if (!listing) {
      listing = this.#list(namespace)
        .then((snapshot) => {
          this.#snapshots.set(namespace, snapshot);
          return snapshot;
        })
        .finally(() => this.#listing.delete(namespace));
      this.#listing.set(namespace, listing);
    }
    return listing;
  }

  async #list(namespace: string): Promise<Snapshot> {
    const api = managementApi(this.#managementUrl);
    const startedAt = Date.now();
    this.stats.listings++;
    const queues = new Map<string, QueueInfo>();
    // Every queue of the namespace: `turnpike.<namespace>.` (a namespace name has no dots).
    const pattern = encodeURIComponent(
      prefixPattern(
        names(namespace)
          .modelQueue("")
          .replace(/model\.$/, ""),
      ),
    );
    for (let page = 1; ; page++) {
      const url =
        `${api.origin}/api/queues/${encodeURIComponent(api.vhost)}?page=${page}&page_size=${PAGE_SIZE}` +
        `&name=${pattern}&use_regex=true&columns=name,messages,consumers,arguments`;
      let body: { items: Listed[]; page_count: number };
      try {
        const response = await fetch(url, {
          headers: api.auth ? { authorization: api.auth } : {},
          signal: AbortSignal.timeout(30_000),
        });
        if (!response.ok) throw new Error(`HTTP ${response.status} ${await response.text()}`);
        body = (await response.json()) as typeof body;
      } catch (cause) {
        throw new TransientError(`listing the queues of ${namespace} from the RabbitMQ management API`, {
          cause,
        });
      }
      for (const q of body.items) {
        queues.set(q.name, {
          name: q.name,
          messages: q.messages ?? 0,
          consumers: q.consumers ?? 0,
          arguments: q.arguments ?? {},
        });
      }
      if (page >= body.page_count) {
        const lanes = lanesByModelQueue(queues.values());
        return { startedAt, durationMs: Date.now() - startedAt, queues, lanes };
      }
    }
  }

  /**
   * The tenant lanes of the model whose queue is `modelQueue`, as last listed: the queues
   * names(namespace).modelQueuePattern matches besides the model's own. Filed once per listing; a
   * regex over every listed queue in each reconcile made a resync of N models cost N^2 tests.
   */
  async lanesOf(namespace: string, modelQueue: string): Promise<QueueInfo[]> {
    const snapshot = await this.snapshot(namespace);
    return (snapshot.lanes.get(modelQueue) ?? []).filter((lane) => snapshot.queues.has(lane.name));
  }

  /**
   * The queue as last listed; with its consumers' arguments (a GET of its own) when it has any,
   * since workers report their execution provider there.
   */
  async inspect(namespace: string, queue: string): Promise<QueueInfo | undefined> {
    const snapshot = await this.snapshot(namespace);
    const listed = snapshot.queues.get(queue);
    if (!listed) {
      // Missing from a listing that began before this operator declared it: it was just created,
      // with the arguments this operator declared (the broker accepted them), not with none: a
      // spec change before the next listing must be compared with those.
      const declared = this.#declared.get(queue);
      const declaredAt = names(namespace).sharedQueues.includes(queue)
        ? this.#sharedDeclared.get(namespace)
        : declared?.at;
      if (declaredAt === undefined || declaredAt < snapshot.startedAt) return undefined;
      return {
        name: queue,
        messages: 0,
        consumers: 0,
        arguments: declared?.args ?? {},
        consumerArguments: [],
      };
    }
    if (listed.consumers === 0) return { ...listed, consumerArguments: [] };
    this.stats.queueGets++;
    return inspectQueue(this.#managementUrl, queue);
  }

  /** Whether `queue` must be declared to exist with `args` (listed with them, or declared since the listing). */
  async needsDeclaration(namespace: string, queue: string, args: Record<string, unknown>): Promise<boolean> {
    const snapshot = await this.snapshot(namespace);
    const listed = snapshot.queues.get(queue);
    if (listed && argumentDifferences(listed.arguments, args).length === 0) return false;
    const declared = this.#declared.get(queue);
    return !(declared && declared.arguments === argumentsKey(args) && declared.at >= snapshot.startedAt);
  }

  /** Whether the namespace's shared topology must be declared (never by this operator, or a shared queue is gone). */
  async needsSharedTopology(namespace: string): Promise<boolean> {
    const declaredAt = this.#sharedDeclared.get(namespace);
    if (declaredAt === undefined) return true;
    const snapshot = await this.snapshot(namespace);
    if (declaredAt >= snapshot.startedAt) return false;
    return names(namespace).sharedQueues.some((q) => !snapshot.queues.has(q));
  }

  declared(queue: string, args: Record<string, unknown>): void {
    this.stats.declarations++;
    this.#declared.set(queue, { at: Date.now(), arguments: argumentsKey(args), args });
  }

  /**
   * Declares the namespace's shared topology through `declare` unless it is known declared; one
   * declaration at a time per namespace, the others wait for it (concurrent declarations of one
   * quorum queue from several channels did not complete within a minute in the operator-restart
   * test).
   */
  async ensureSharedTopology(namespace: string, declare: () => Promise<void>): Promise<void> {
    const running = this.#sharedDeclaring.get(namespace);
    if (running) return running;
    if (!(await this.needsSharedTopology(namespace))) return;
    const started = this.#sharedDeclaring.get(namespace);
    if (started) return started;
    const declaring = declare()
      .then(() => {
        this.stats.sharedDeclarations++;
        this.#sharedDeclared.set(namespace, Date.now());
      })
      .finally(() => this.#sharedDeclaring.delete(namespace));
    this.#sharedDeclaring.set(namespace, declaring);
    return declaring;
  }

  /** The queue was deleted (or its declaration refused): declare it again next time. */
  forget(namespace: string, queue: string): void {
    this.#declared.delete(queue);
    this.#snapshots.get(namespace)?.queues.delete(queue);
  }

  /** A new broker connection or a refused declaration: the shared topology is declared again. */
  forgetSharedTopology(namespace?: string): void {
    if (namespace === undefined) this.#sharedDeclared.clear();
    else this.#sharedDeclared.delete(namespace);
  }
}

/**
 * Watch caches (informers): one list+watch per kind and watched namespace. The operator keeps one
 * of the child kinds it applies, selected on the server by `app.kubernetes.io/managed-by=turnpike`,
 * so a reconcile reads its children and their status from memory instead of GETting each of them;
 * and one of its own kinds, from which the runtime config is rendered without listing them all.
 *
 * - Read-your-writes: what the operator applied or deleted itself is kept in an overlay until the
 *   watch delivers that version (or for OVERLAY_MS), so a reconcile right after an apply does not
 *   apply again because the watch is a few milliseconds behind.
 * - A kind that is not synced (not served yet, e.g. KEDA missing; or its watch failed and is being
 *   restarted with backoff) is read from the apiserver, exactly as without the cache.
 * - `onEvent` reports every change the watches see (not the overlay), for enqueueing owners.
 * - Objects are indexed by their owner label, so listing one owner's children (what every
 *   reconcile does to prune) costs its few children, not every object of the namespace.
 */
import { KubeConfig, makeInformer, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "../../runtime/shared/logger.js";
import { apiChildReader, childClient, type ChildReader } from "./child-reader.js";
import type { ChildKind } from "./children.js";
import { describeError } from "./errors.js";
import { LABELS } from "./labels.js";

/** How long an own write shadows the watch at most (the watch normally catches up in ms). */
const OVERLAY_MS = 30_000;
const RETRY_BASE_MS = 1_000;
const RETRY_MAX_MS = 30_000;

export type ChildEvent = "add" | "update" | "delete";

interface Overlay {
  /** undefined: deleted by the operator. */
  object?: KubernetesObject;
  resourceVersion?: bigint;
  until: number;
}

interface Informed {
  informer: ReturnType<typeof makeInformer<KubernetesObject>>;
  synced: boolean;
  failures: number;
  timer?: NodeJS.Timeout;
}

/** The label every child carries (childLabels): what the child cache selects on. */
export const MANAGED_BY_TURNPIKE: Record<string, string> = { [LABELS.managedBy]: "turnpike" };

function resourceVersionOf(object: KubernetesObject | undefined): bigint | undefined {
  try {
    return BigInt(object?.metadata?.resourceVersion ?? "");
  } catch {
    return undefined; // opaque in principle; then the overlay just waits for any newer event
  }
}

function apiPath(kind: ChildKind, namespace: string | undefined): string {
  const base = kind.group ? `/apis/${kind.group}/${kind.version}` : `/api/${kind.version}`;
  return namespace ? `${base}/namespaces/${namespace}/${kind.plural}` : `${base}/${kind.plural}`;
}

/**
 * Drops the field sets (`fieldsV1`) of an object's managedFields in place, keeping who wrote it and
 * how. They are the larger part of a child as the apiserver serves it (a worker Deployment's are
 * bigger than its spec) and nothing reads them from the cache: the one writer of managed fields,
 * handOverCreatedFields (child-create.ts), GETs the child first when they are missing.
 */
function withoutFieldSets(object: KubernetesObject): void {
  for (const entry of object.metadata?.managedFields ?? []) delete entry.fieldsV1;
}

function matches(object: KubernetesObject, selector: Record<string, string>): boolean {
  const labels = object.metadata?.labels ?? {};
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

export class WatchCache implements ChildReader {
  readonly #log: Logger;
  readonly #selector: Record<string, string>;
  readonly #scopes: (string | undefined)[];
  /** kind.plural.group -> scope ("" = all namespaces, else the namespace) -> informer. */
  readonly #informers = new Map<string, Map<string, Informed>>();
  readonly #overlay = new Map<string, Overlay>();
  /** Overlay names by scope key (kind and namespace, see #key), so a list visits only its own. */
  readonly #overlayNames = new Map<string, Set<string>>();
  /** Names by owner (scope key + owner label value), from the watches. */
  readonly #byOwner = new Map<string, Set<string>>();
  /** Owner label value by object key, to move an object in #byOwner when it changes. */
  readonly #ownerOf = new Map<string, string>();
  readonly #listeners: ((kind: ChildKind, event: ChildEvent, object: KubernetesObject) => void)[] = [];
  /** The resourceVersion of the operator's last own write of each object (key as #key). */
  readonly #ownVersions = new Map<string, string>();
  #closed = false;

  /**
   * Caches the objects of `kinds` in `namespaces` (all when empty) that carry `selector`'s labels.
   * Resolves once every kind that is served has been listed; kinds that are not are retried in the
   * background (and read from the apiserver meanwhile).
   */
  static async start(
    kinds: ChildKind[],
    namespaces: readonly string[],
    log: Logger,
    selector: Record<string, string> = {},
  ): Promise<WatchCache> {
    const cache = new WatchCache(namespaces, log, selector);
    await Promise.all(kinds.map((kind) => cache.#watch(kind)));
    return cache;
  }

  private constructor(namespaces: readonly string[], log: Logger, selector: Record<string, string>) {
    this.#log = log.child({ component: "watch-cache" });
    this.#scopes = namespaces.length ? [...namespaces] : [undefined];
    this.#selector = selector;
  }

  /** Calls `listener` for every change the watches deliver. */
  onEvent(listener: (kind: ChildKind, event: ChildEvent, object: KubernetesObject) => void): void {
    this.#listeners.push(listener);
  }

  async #watch(kind: ChildKind): Promise<void> {
    const config = new KubeConfig();
    config.loadFromDefault();
    const perScope = new Map<string, Informed>();
    this.#informers.set(`${kind.plural}.${kind.group}`, perScope);
    await Promise.all(
      this.#scopes.map(async (namespace) => {
        const client = childClient(kind);
        let query = namespace ? client.InNamespace(namespace) : client;
        for (const [key, value] of Object.entries(this.#selector)) query = query.WithLabel(key, value);
        const labelSelector = Object.entries(this.#selector)
          .map(([key, value]) => `${key}=${value}`)
          .join(",");
        const informer = makeInformer<KubernetesObject>(
          config,
          apiPath(kind, namespace),
          () => query.Get() as never,
          labelSelector || undefined,
        );
        const informed: Informed = { informer, synced: false, failures: 0 };
        perScope.set(namespace ?? "", informed);
        for (const event of ["add", "update", "delete"] as const) {
          informer.on(event, (object) => this.#seen(kind, event, object));
        }
        informer.on("error", (error) => this.#failed(kind, namespace, informed, error));
        await this.#start(kind, namespace, informed);
      }),
    );
  }

  async #start(kind: ChildKind, namespace: string | undefined, informed: Informed): Promise<void> {
    if (this.#closed) return;
    try {
      await informed.informer.start();
      // start() resolves after the list even when the list failed (it reports that as an error).
      if (informed.timer === undefined) {
        informed.synced = true;
        informed.failures = 0;
      }
    } catch (error) {
      this.#failed(kind, namespace, informed, error);
    }
  }

  #failed(kind: ChildKind, namespace: string | undefined, informed: Informed, error: unknown): void {
    informed.synced = false;
    if (this.#closed || informed.timer) return;
    informed.failures += 1;
    const delay = Math.min(RETRY_MAX_MS, RETRY_BASE_MS * 2 ** Math.min(informed.failures - 1, 5));
    const status = (error as { code?: number; statusCode?: number }).code;
    // A 404 is a kind that is not served (yet): normal without KEDA or the Prometheus Operator.
    if (informed.failures === 1 || status !== 404) {
      this.#log.warn(
        { kind: kind.kind, namespace, retryMs: delay, error: describeError(error) },
        "watch failed; reading from the apiserver until it is back",
      );
    }
    informed.timer = setTimeout(() => {
      informed.timer = undefined;
      void informed.informer.stop().then(() => this.#start(kind, namespace, informed));
    }, delay);
    informed.timer.unref();
  }

  #seen(kind: ChildKind, event: ChildEvent, object: KubernetesObject): void {
    // The informer hands its listeners the object it stores, so this slims the cached copy.
    withoutFieldSets(object);
    const namespace = object.metadata?.namespace ?? "";
    const name = object.metadata?.name ?? "";
    const key = this.#key(kind, namespace, name);
    this.#index(key, this.#key(kind, namespace, ""), name, event === "delete" ? undefined : object);
    if (event === "delete") this.#ownVersions.delete(key);
    const own = this.#overlay.get(key);
    if (own) {
      const version = resourceVersionOf(object);
      const caughtUp =
        event === "delete" ||
        own.resourceVersion === undefined ||
        version === undefined ||
        version >= own.resourceVersion;
      if (caughtUp) this.#dropOverlay(key);
    }
    for (const listener of this.#listeners) listener(kind, event, object);
  }

  #key(kind: ChildKind, namespace: string, name: string): string {
    return `${kind.plural}.${kind.group}/${namespace}/${name}`;
  }

  /** Files the object under its owner label (or removes it when `object` is undefined). */
  #index(key: string, scope: string, name: string, object: KubernetesObject | undefined): void {
    const before = this.#ownerOf.get(key);
    const after = object?.metadata?.labels?.[LABELS.owner];
    if (before === after) return;
    if (before !== undefined) {
      this.#byOwner.get(scope + before)?.delete(name);
      this.#ownerOf.delete(key);
    }
    if (after !== undefined) {
      const names = this.#byOwner.get(scope + after) ?? new Set<string>();
      this.#byOwner.set(scope + after, names.add(name));
      this.#ownerOf.set(key, after);
    }
  }

  #dropOverlay(key: string): void {
    this.#overlay.delete(key);
    const slash = key.lastIndexOf("/");
    this.#overlayNames.get(key.slice(0, slash + 1))?.delete(key.slice(slash + 1));
  }

  /** The synced informer that covers `namespace`, if any. */
  #synced(kind: ChildKind, namespace: string): Informed | undefined {
    const perScope = this.#informers.get(`${kind.plural}.${kind.group}`);
    const informed = perScope?.get(namespace) ?? perScope?.get("");
    return informed?.synced ? informed : undefined;
  }

  #own(key: string): Overlay | undefined {
    const own = this.#overlay.get(key);
    if (own && own.until < Date.now()) {
      this.#dropOverlay(key);
      return undefined;
    }
    return own;
  }

  async get(kind: ChildKind, namespace: string, name: string): Promise<KubernetesObject | undefined> {
    const informed = this.#synced(kind, namespace);
    if (!informed) return apiChildReader.get(kind, namespace, name);
    const own = this.#own(this.#key(kind, namespace, name));
    if (own) return own.object;
    return informed.informer.get(name, namespace);
  }

  async list(
    kind: ChildKind,
    namespace: string,
    selector: Record<string, string>,
  ): Promise<KubernetesObject[]> {
    const informed = this.#synced(kind, namespace);
    if (!informed) return apiChildReader.list(kind, namespace, selector);
    const scope = this.#key(kind, namespace, "");
    const byName = new Map<string, KubernetesObject | undefined>();
    const owner = selector[LABELS.owner];
    if (owner === undefined) {
      for (const object of informed.informer.list(namespace)) byName.set(object.metadata!.name!, object);
    } else {
      for (const name of this.#byOwner.get(scope + owner) ?? []) {
        byName.set(name, informed.informer.get(name, namespace));
      }
    }
    for (const name of [...(this.#overlayNames.get(scope) ?? [])]) {
      const own = this.#own(scope + name);
      if (own) byName.set(name, own.object);
    }
    return [...byName.values()].filter((o): o is KubernetesObject => !!o && matches(o, selector));
  }

  /**
   * Whether `object` is the version the operator itself last wrote (a watch event that only echoes
   * its own write), as far as the answer to that write has arrived.
   */
  isOwnWrite(kind: ChildKind, object: KubernetesObject): boolean {
    const { namespace = "", name = "", resourceVersion } = object.metadata ?? {};
    return !!resourceVersion && this.#ownVersions.get(this.#key(kind, namespace, name)) === resourceVersion;
  }

  applied(kind: ChildKind, object: KubernetesObject): void {
    const { namespace = "", name = "" } = object.metadata ?? {};
    if (object.metadata?.resourceVersion) {
      this.#ownVersions.set(this.#key(kind, namespace, name), object.metadata.resourceVersion);
    }
    const resourceVersion = resourceVersionOf(object);
    // The watch often delivers a write (and the next one, e.g. a Deployment's status) before its
    // answer arrives: an overlay of the older answer would then hide the newer object until
    // OVERLAY_MS, as no later event comes to drop it.
    const watched = this.#synced(kind, namespace)?.informer.get(name, namespace);
    const watchedVersion = resourceVersionOf(watched);
    if (resourceVersion !== undefined && watchedVersion !== undefined && watchedVersion >= resourceVersion) {
      this.#dropOverlay(this.#key(kind, namespace, name));
      return;
    }
    this.#setOverlay(kind, namespace, name, { object, resourceVersion, until: Date.now() + OVERLAY_MS });
  }

  watches(kind: ChildKind, namespace: string): boolean {
    return this.#synced(kind, namespace) !== undefined;
  }

  deleted(kind: ChildKind, namespace: string, name: string): void {
    this.#setOverlay(kind, namespace, name, { until: Date.now() + OVERLAY_MS });
  }

  #setOverlay(kind: ChildKind, namespace: string, name: string, own: Overlay): void {
    const scope = this.#key(kind, namespace, "");
    this.#overlay.set(scope + name, own);
    this.#overlayNames.set(scope, (this.#overlayNames.get(scope) ?? new Set<string>()).add(name));
  }

  /** Whether every watch of every kind is synced (tests). */
  get synced(): boolean {
    return [...this.#informers.values()].every((perScope) =>
      [...perScope.values()].every((informed) => informed.synced),
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const all = [...this.#informers.values()].flatMap((perScope) => [...perScope.values()]);
    for (const informed of all) clearTimeout(informed.timer);
    await Promise.all(all.map((informed) => informed.informer.stop()));
  }
}

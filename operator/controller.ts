/**
 * Runs the reconcilers: one keyed work queue per kind (retry with backoff), a periodic resync
 * that re-adds every object (Pepr's watch re-emits only changed objects), and the shared clients.
 * Pepr's Reconcile bindings call `enqueue`; tests can drive the same Controller without Pepr.
 */
import type { ConfirmChannel } from "amqplib";
import { Redis } from "ioredis";
import { K8s, type GenericClass } from "kubernetes-fluent-client";
import { AmqpConnection } from "../runtime/shared/amqp-connection.js";
import { logger, type Logger } from "../runtime/shared/logger.js";
import type { OperatorEnv, OperatorSettings } from "./config.js";
import type { KubernetesObject } from "@kubernetes/client-node";
import { QueueInventory } from "./inference-model/queue-inventory.js";
import { UnroutedModels } from "./runtime-config/unrouted-models.js";
import { apiChildReader, type ChildReader } from "./shared/child-reader.js";
import type { ReconcileContext, Reconciler } from "./shared/context.js";
import { OWN_KINDS, stableStringify } from "./shared/children.js";
import { describeError } from "./shared/errors.js";
import { LABELS } from "./shared/labels.js";
import { INFERENCE_MODEL_KIND, RUNTIME_CONFIG_MAP } from "./shared/names.js";
import { WorkQueue, type WorkQueueOptions } from "./shared/work-queue.js";

/**
 * Channels the reconcilers' queue declarations are spread over: one channel runs one declaration
 * at a time, and RabbitMQ takes ~28 ms to create a quorum queue (9 ms each over 4 channels).
 */
const AMQP_CHANNELS = 4;

/** How long touches of a namespace's runtime config are collected before one render. */
const RUNTIME_CONFIG_DEBOUNCE_MS = 500;
/**
 * A namespace whose render takes long (1,000 models: a ~1 MB config built, validated, hashed and
 * written) waits this many times its last render's duration instead, up to the cap: renders then
 * take at most about a tenth of the operator's time while models keep arriving.
 */
const RUNTIME_CONFIG_DEBOUNCE_FACTOR = 10;
const RUNTIME_CONFIG_DEBOUNCE_MAX_MS = 5_000;
/**
 * While reconciles are queued or running (e.g. 1,000 models created at once), a render waits for
 * them, up to this long after the first touch: each render of a big namespace writes a ~1 MB
 * ConfigMap that the apiserver stores and every watcher receives, so one render per burst beats
 * one per debounce interval (bench/README.md, section 4).
 */
const RUNTIME_CONFIG_MAX_DEFER_MS = 10_000;

/**
 * Objects of one kind reconciled at once. A reconcile mostly waits for the apiserver and the broker
 * (a handful of sequential round trips): 4 at a time left both mostly idle with 1,000 models.
 */
const RECONCILE_CONCURRENCY = 16;

export interface KindRegistration {
  /** Name of the kind, for logs and keys. */
  kind: string;
  model: GenericClass;
  reconcile: Reconciler;
  /** Called when retries are exhausted, to record the failure on the object (Degraded). */
  onGiveUp(ctx: ReconcileContext, namespace: string, name: string, error: unknown): Promise<void>;
}

export interface ControllerOptions {
  env: OperatorEnv;
  settings: OperatorSettings;
  kinds: KindRegistration[];
  /** Renders the runtime ConfigMap of a namespace. */
  renderRuntimeConfig(ctx: ReconcileContext, namespace: string): Promise<void>;
  /** Where reconcilers read children from (the operator passes its WatchCache); default: GETs. */
  children?: ChildReader;
  /** Where the runtime-config renderer lists the operator's own kinds from; default: lists. */
  resources?: ChildReader;
  queue?: WorkQueueOptions;
}

export class Controller {
  readonly #options: ControllerOptions;
  readonly #log: Logger = logger("controller");
  readonly #queues = new Map<string, WorkQueue>();
  readonly #runtimeConfigQueue: WorkQueue;
  readonly #redis: Redis;
  readonly #amqp: AmqpConnection;
  readonly #channels: { connection: unknown; channel: Promise<ConfirmChannel> }[] = [];
  #nextChannel = 0;
  /** How long the last runtime-config render of each namespace took (ms). */
  readonly #renderMs = new Map<string, number>();
  /** When each namespace's oldest unrendered touch happened. */
  readonly #touchedAt = new Map<string, number>();
  #resyncTimer?: NodeJS.Timeout;
  /** The last status seen of each worker Deployment (namespace/name), to skip events that keep it. */
  readonly #deploymentStatus = new Map<string, string>();
  /** The generation of each InferenceModel (namespace/name) its last event carried. */
  readonly #modelGenerations = new Map<string, number>();
  /** Keys (kind/namespace/name) whose next reconcile only needs to update the status ... */
  readonly #statusOnly = new Set<string>();
  /** ... unless a full one was asked for since the last one started. */
  readonly #full = new Set<string>();
  readonly ctx: ReconcileContext;

  constructor(options: ControllerOptions) {
    this.#options = options;
    // A refused declaration closes the channel: the next reconcile gets a fresh connection.
    this.#amqp = new AmqpConnection({
      url: options.env.TURNPIKE_AMQP_URL,
      name: "turnpike-operator",
      log: this.#log,
      reconnect: "on-demand",
    });
    this.#redis = new Redis(options.env.TURNPIKE_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 2 });
    this.ctx = {
      settings: options.settings,
      amqpChannel: () => this.#amqpChannel(),
      rabbitManagementUrl: options.env.TURNPIKE_RABBIT_MANAGEMENT_URL,
      queues: new QueueInventory(options.env.TURNPIKE_RABBIT_MANAGEMENT_URL),
      redis: this.#redis,
      children: options.children ?? apiChildReader,
      resources: options.resources ?? apiChildReader,
      log: this.#log,
      unrouted: new UnroutedModels((namespace, name) => {
        if (this.#queues.has(INFERENCE_MODEL_KIND)) this.enqueue(INFERENCE_MODEL_KIND, namespace, name);
      }),
      // Debounced: each render covers every object of the namespace, and creating 1,000 models at
      // once otherwise renders it hundreds of times (bench/README.md, section 4).
      touchRuntimeConfig: (namespace) => {
        if (!this.#touchedAt.has(namespace)) this.#touchedAt.set(namespace, Date.now());
        this.#runtimeConfigQueue.addAfter(
          namespace,
          Math.min(
            RUNTIME_CONFIG_DEBOUNCE_MAX_MS,
            Math.max(
              RUNTIME_CONFIG_DEBOUNCE_MS,
              RUNTIME_CONFIG_DEBOUNCE_FACTOR * (this.#renderMs.get(namespace) ?? 0),
            ),
          ),
        );
      },
    };
    for (const registration of options.kinds) {
      const queue = new WorkQueue(
        async (key) => {
          const [namespace, name] = splitKey(key);
          const hintKey = `${registration.kind}/${key}`;
          const full = this.#full.delete(hintKey);
          const statusOnly = this.#statusOnly.delete(hintKey) && !full;
          try {
            const result = await registration.reconcile(this.ctx, namespace, name, { statusOnly });
            if (result?.requeueAfterMs) queue.addAfter(key, result.requeueAfterMs);
          } catch (error) {
            // What runs next (a retry, or a run asked for meanwhile) redoes everything.
            this.#statusOnly.delete(hintKey);
            throw error;
          }
        },
        async (key, error) => {
          const [namespace, name] = splitKey(key);
          this.#log.error(
            { kind: registration.kind, namespace, name, error: describeError(error) },
            "giving up",
          );
          await registration.onGiveUp(this.ctx, namespace, name, error);
        },
        { concurrency: RECONCILE_CONCURRENCY, ...options.queue },
      );
      this.#queues.set(registration.kind, queue);
    }
    this.#runtimeConfigQueue = new WorkQueue(
      async (namespace) => {
        const touchedAt = this.#touchedAt.get(namespace) ?? Date.now();
        if (this.#reconciling() && Date.now() - touchedAt < RUNTIME_CONFIG_MAX_DEFER_MS) {
          this.#runtimeConfigQueue.addAfter(namespace, RUNTIME_CONFIG_DEBOUNCE_MS);
          return;
        }
        this.#touchedAt.delete(namespace);
        const started = performance.now();
        try {
          await options.renderRuntimeConfig(this.ctx, namespace);
        } finally {
          this.#renderMs.set(namespace, performance.now() - started);
        }
      },
      (namespace, error) => {
        this.#log.error({ namespace, error: describeError(error) }, "rendering runtime config failed");
      },
      options.queue,
    );
  }

  /** Whether any reconcile is queued or running. */
  #reconciling(): boolean {
    return [...this.#queues.values()].some((queue) => queue.busy);
  }

  /** The session's channel or one of a few more on its connection, in turn. */
  async #amqpChannel(): Promise<ConfirmChannel> {
    const session = await this.#amqp.session();
    const slot = this.#nextChannel++ % AMQP_CHANNELS;
    if (slot === 0) return session.channel;
    const pooled = this.#channels[slot];
    if (pooled?.connection === session.connection) return pooled.channel;
    const channel = session.connection.createConfirmChannel().then((c) => {
      // A refused declaration closes its channel (the caller gets the error): open another next time.
      c.on("error", () => undefined);
      c.on("close", () => {
        if (this.#channels[slot]?.channel === channel) delete this.#channels[slot];
      });
      return c;
    });
    this.#channels[slot] = { connection: session.connection, channel };
    channel.catch(() => {
      if (this.#channels[slot]?.channel === channel) delete this.#channels[slot];
    });
    return channel;
  }

  /**
   * Queues one object of a kind for reconcile. `statusOnly`: only a child's status changed, so the
   * next run may just update the status, and then goes ahead of those waiting (WorkQueue.add),
   * unless a full run was asked for since the last one started, or a retry is pending.
   */
  enqueue(kind: string, namespace: string, name: string, statusOnly = false): void {
    const queue = this.#queues.get(kind);
    if (!queue) throw new Error(`no reconciler registered for kind ${kind}`);
    const key = `${namespace}/${name}`;
    const hintKey = `${kind}/${key}`;
    let urgent = false;
    if (!statusOnly) {
      this.#full.add(hintKey);
      this.#statusOnly.delete(hintKey);
    } else if (!this.#full.has(hintKey) && !queue.waiting(key)) {
      this.#statusOnly.add(hintKey);
      urgent = true;
    }
    queue.add(key, urgent);
  }

  /**
   * A child changed (a watch event): reconcile its owner when that can change the owner's status
   * or needs a repair. Deployments carry the readiness the owner reports: their owner comes back
   * when their status changed (not for the operator's own applies, whose answer the running
   * reconcile already read), ahead of the queue and for its status only; any other child only
   * matters when it is gone.
   * The runtime ConfigMap has no owner: it is rendered again.
   */
  childChanged(kind: string, event: "add" | "update" | "delete", child: KubernetesObject): void {
    const namespace = child.metadata?.namespace;
    const labels = child.metadata?.labels ?? {};
    if (!namespace || !this.watches(namespace)) return;
    if (kind === "Deployment" && !this.#deploymentStatusChanged(event, namespace, child)) return;
    if (kind !== "Deployment" && event !== "delete") return;
    const ownerKind = labels[LABELS.ownerKind];
    const owner = labels[LABELS.owner];
    if (!ownerKind || !owner) {
      if (kind === "ConfigMap" && child.metadata?.name === RUNTIME_CONFIG_MAP)
        this.ctx.touchRuntimeConfig(namespace);
      return;
    }
    const registration = this.#options.kinds.find((k) => k.kind.toLowerCase() === ownerKind);
    if (registration)
      this.enqueue(registration.kind, namespace, owner, kind === "Deployment" && event !== "delete");
  }

  /** Whether a Deployment event changed its status (a new one without status has none to report). */
  #deploymentStatusChanged(event: string, namespace: string, deployment: KubernetesObject): boolean {
    const key = `${namespace}/${deployment.metadata?.name}`;
    if (event === "delete") {
      this.#deploymentStatus.delete(key);
      return true;
    }
    const status = stableStringify((deployment as { status?: object }).status ?? {});
    if ((this.#deploymentStatus.get(key) ?? "{}") === status) return false;
    this.#deploymentStatus.set(key, status);
    return true;
  }

  /**
   * The cache of the operator's own kinds saw an object change. InferenceModels are reconciled
   * from that cache, so its event (not only Pepr's, which may come first) must start a reconcile:
   * otherwise a reconcile that read the cache a moment before it caught up would be the last.
   */
  resourceChanged(kind: string, object: KubernetesObject): void {
    const { namespace, name } = object.metadata ?? {};
    if (kind !== INFERENCE_MODEL_KIND || !namespace || !name || !this.watches(namespace)) return;
    this.objectChanged(kind, object);
  }

  /**
   * An object of a reconciled kind changed (a watch event): reconcile it. An InferenceModel whose
   * spec is the one an earlier event already brought (same generation), or its status already
   * reports (observedGeneration), or that only echoes the operator's own write (its finalizer, its
   * status), needs its status looked at at most: the reconciler decides from what it reads whether
   * that is really all (ReconcileHint). The echo of the operator's own write, once its answer is in
   * (WatchCache.isOwnWrite), needs no reconcile at all.
   */
  objectChanged(kind: string, object: KubernetesObject): void {
    const { namespace, name, generation, deletionTimestamp } = object.metadata ?? {};
    if (!namespace || !name) return;
    let statusOnly = false;
    if (kind === INFERENCE_MODEL_KIND) {
      const key = `${namespace}/${name}`;
      const seen = this.#modelGenerations.get(key);
      if (deletionTimestamp) this.#modelGenerations.delete(key);
      else if (generation !== undefined) this.#modelGenerations.set(key, generation);
      const observed = (object as { status?: { observedGeneration?: number } }).status?.observedGeneration;
      const ownWrite = !!this.#options.resources?.isOwnWrite?.(OWN_KINDS.InferenceModel, object);
      // The very version the operator wrote (its finalizer, its status), whose answer the writing
      // reconcile already went on from: nothing in it is news. Any other write is a newer version.
      if (ownWrite && !deletionTimestamp && seen === generation) return;
      statusOnly = !deletionTimestamp && (seen === generation || observed === generation || ownWrite);
    }
    this.enqueue(kind, namespace, name, statusOnly);
  }

  /**
   * Re-adds every object of every kind (only in TURNPIKE_WATCH_NAMESPACES when set), and
   * re-renders the runtime config of every namespace that holds one; periodic, and once at start.
   * Renders skip unchanged ConfigMaps, so a no-op resync writes nothing.
   */
  async resync(): Promise<void> {
    const scoped = this.#options.env.TURNPIKE_WATCH_NAMESPACES;
    const namespaces = new Set<string>();
    for (const registration of this.#options.kinds) {
      const lists = scoped.length
        ? await Promise.all(scoped.map((ns) => K8s(registration.model).InNamespace(ns).Get()))
        : [await K8s(registration.model).Get()];
      for (const item of lists.flatMap((list) => list.items)) {
        namespaces.add(item.metadata!.namespace!);
        this.enqueue(registration.kind, item.metadata!.namespace!, item.metadata!.name!);
      }
    }
    for (const namespace of namespaces) this.ctx.touchRuntimeConfig(namespace);
  }

  /** Whether objects of `namespace` are this operator's to reconcile. */
  watches(namespace: string): boolean {
    const scoped = this.#options.env.TURNPIKE_WATCH_NAMESPACES;
    return scoped.length === 0 || scoped.includes(namespace);
  }

  /** Whether a reconciler is registered for `kind`. */
  handles(kind: string): boolean {
    return this.#queues.has(kind);
  }

  /** Starts the periodic resync. */
  start(): void {
    const every = this.#options.env.TURNPIKE_RESYNC_SECONDS * 1000;
    const tick = () =>
      this.resync().catch((error) => this.#log.warn({ error: describeError(error) }, "resync failed"));
    void tick();
    this.#resyncTimer = setInterval(tick, every);
    this.#resyncTimer.unref();
  }

  /** Resolves when every queue is idle (tests, benchmarks). */
  async idle(): Promise<void> {
    // Reconciles queue runtime-config renders and vice versa: loop until all are idle at once.
    for (let i = 0; i < 10; i++) {
      await Promise.all([...this.#queues.values(), this.#runtimeConfigQueue].map((q) => q.idle()));
      await new Promise((r) => setImmediate(r));
      const busy = await Promise.race([
        Promise.all([...this.#queues.values(), this.#runtimeConfigQueue].map((q) => q.idle())).then(
          () => false,
        ),
        new Promise<boolean>((r) => setTimeout(() => r(true), 5)),
      ]);
      if (!busy) return;
    }
  }

  async stop(): Promise<void> {
    clearInterval(this.#resyncTimer);
    for (const queue of this.#queues.values()) queue.stop();
    this.#runtimeConfigQueue.stop();
    await this.#amqp.close({ graceful: false });
    this.#redis.disconnect();
  }
}

function splitKey(key: string): [string, string] {
  const slash = key.indexOf("/");
  return [key.slice(0, slash), key.slice(slash + 1)];
}

/**
 * What every reconciler gets: settings, clients for the external systems it manages, a logger,
 * and a way to ask for other work (the namespace's runtime config, a later requeue).
 */
import type { ConfirmChannel } from "amqplib";
import type { Redis } from "ioredis";
import type { Logger } from "../../runtime/shared/logger.js";
import type { OperatorSettings } from "../config.js";
import type { QueueInventory } from "../inference-model/queue-inventory.js";
import type { UnroutedModels } from "../runtime-config/unrouted-models.js";
import type { ChildReader } from "./child-reader.js";

export interface ReconcileContext {
  settings: OperatorSettings;
  /** A confirm channel to RabbitMQ; reconnects when the previous one closed. */
  amqpChannel(): Promise<ConfirmChannel>;
  /** Base URL (with credentials) of RabbitMQ's management API, for queue depth. */
  rabbitManagementUrl: string;
  /** The namespaces' queues as RabbitMQ's management API last listed them, and what was declared since. */
  queues: QueueInventory;
  redis: Redis;
  /** Where children and their status are read from: the watch caches in the operator. */
  children: ChildReader;
  /** Where the runtime config reads the namespace's own kinds (OWN_KINDS) from: a watch cache too. */
  resources: ChildReader;
  log: Logger;
  /** Re-render the runtime ConfigMap of a namespace (models, pipelines, tenants changed). */
  touchRuntimeConfig(namespace: string): void;
  /** Models the runtime config could not carry (too large); absent where nothing reports them. */
  unrouted?: UnroutedModels;
}

/** What a reconcile asks of the queue afterwards. */
export interface ReconcileResult {
  /** Reconcile again after this long (status that changes without events, e.g. readiness). */
  requeueAfterMs?: number;
}

/** Why a reconcile runs, when the Controller knows more than "something changed". */
export interface ReconcileHint {
  /**
   * Only a child's status changed (a worker Deployment's) since the last reconcile, which ran to
   * the end: the reconciler may just bring the status up to date.
   */
  statusOnly?: boolean;
}

export type Reconciler = (
  ctx: ReconcileContext,
  namespace: string,
  name: string,
  hint?: ReconcileHint,
) => Promise<ReconcileResult | void>;

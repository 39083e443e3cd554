/**
 * What every route of the gateway shares: settings, the current runtime config, and the clients
 * (Redis, RabbitMQ, PostgreSQL) behind small domain objects. Built once by gateway.ts.
 */
import type { Redis } from "ioredis";
import { type CompletionNotice, type RuntimeConfig } from "../shared/contracts/index.js";
import type { Logger } from "../shared/logger.js";
import type { Metrics } from "../shared/metrics.js";
import type { QuotaStore } from "../shared/quota/index.js";
import type { Authenticator } from "./auth.js";
import type { CompletionHub } from "./completions.js";
import type { GatewayEnv } from "./config.js";
import type { TaskPublisher } from "./publisher.js";
import type { ResultCacheStore } from "../shared/result-cache-store.js";
import type { RequestStates } from "./request-state.js";
import type { Submitter } from "./submit.js";
import type { TenantRecords } from "./tenant/tenant-records.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The authenticated tenant (set by the API scope's onRequest hook). */
    tenant: string;
  }
}

/** Points where tests can act deterministically inside a request's life. */
export interface GatewayHooks {
  /**
   * Runs in GET /v1/requests/{id}/events after the stream registered for the completion notice
   * and before it reads the request's state; `notice` resolves once this process received it.
   */
  afterSubscribe?(event: { requestId: string; notice: Promise<CompletionNotice> }): Promise<void> | void;
}

/** Shared state of one gateway process. */
export interface GatewayContext {
  env: GatewayEnv;
  /** The runtime config in force (replaced when the file changes). */
  config(): RuntimeConfig;
  prefix: string;
  redis: Redis;
  quota: QuotaStore;
  states: RequestStates;
  /** The tenant API's reads of PostgreSQL (request list, usage by model and day). */
  tenantRecords: TenantRecords;
  completions: CompletionHub;
  publisher: TaskPublisher;
  submitter: Submitter;
  /** Cached answers (InferenceModel spec.cache). */
  resultCache: ResultCacheStore;
  authenticator: Authenticator;
  metrics: Metrics;
  log: Logger;
  hooks: GatewayHooks;
  /** False once the gateway is shutting down (readiness answers 503). */
  accepting: boolean;
  /** Aborted when the gateway shuts down: synchronous waits answer 202 at once. */
  stopping: AbortSignal;
  /** Open SSE streams, each ended by calling it (on shutdown). */
  streams: Set<() => void>;
}

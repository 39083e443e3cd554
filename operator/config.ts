/**
 * The operator's one typed config, from the environment, validated with defaults. Connection
 * strings for the runtime are never rendered inline: Deployments reference a Secret by name.
 */
import { z } from "zod";
import { parseEnv } from "../runtime/shared/process-env.js";

export const operatorEnvSchema = z.object({
  /** Image of the runtime (gateway, worker, collector roles). */
  TURNPIKE_RUNTIME_IMAGE: z.string().min(1).default("ghcr.io/turnpike-dev/turnpike-runtime:0.1.0"),
  /** Secret (in each namespace with Turnpike resources) that holds the runtime's connection URLs. */
  TURNPIKE_RUNTIME_SECRET: z.string().min(1).default("turnpike-runtime"),
  /** Where the operator itself reaches RabbitMQ (to declare queues) and its management API. */
  TURNPIKE_AMQP_URL: z.string().url().default("amqp://turnpike:turnpike@127.0.0.1:5672"),
  TURNPIKE_RABBIT_MANAGEMENT_URL: z.string().url().default("http://turnpike:turnpike@127.0.0.1:15672"),
  /** Where the operator writes quota limits and API-key hashes. */
  TURNPIKE_REDIS_URL: z.string().url().default("redis://127.0.0.1:6379"),
  /** Prometheus the KEDA token-rate trigger queries; without it that trigger is left out. */
  TURNPIKE_PROMETHEUS_URL: z.string().url().optional(),
  /** How often status such as queue depth and quota usage is refreshed. */
  TURNPIKE_RESYNC_SECONDS: z.coerce.number().int().min(1).default(30),
  /** Port of the operator's health and metrics server (Pepr's, in watch mode). */
  TURNPIKE_OPERATOR_PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  /**
   * Comma-separated namespaces the operator reconciles; empty (the default) means every namespace.
   * Lets several operators (tests, tenants of one cluster) share an apiserver without fighting.
   */
  TURNPIKE_WATCH_NAMESPACES: z
    .string()
    .default("")
    .transform((value) =>
      value
        .split(",")
        .map((ns) => ns.trim())
        .filter((ns) => ns.length > 0),
    )
    .pipe(z.array(z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be namespace names"))),
});

export type OperatorEnv = z.infer<typeof operatorEnvSchema>;

/** What desired-state functions need to know beyond the resource itself. */
export interface OperatorSettings {
  runtimeImage: string;
  runtimeSecret: string;
  prometheusUrl?: string;
  /** Whether the cluster serves ServiceMonitor (Prometheus Operator installed). */
  serviceMonitors: boolean;
}

export function loadOperatorEnv(env: NodeJS.ProcessEnv = process.env): OperatorEnv {
  return parseEnv(operatorEnvSchema, env);
}

export function settingsFrom(env: OperatorEnv, serviceMonitors = false): OperatorSettings {
  return {
    runtimeImage: env.TURNPIKE_RUNTIME_IMAGE,
    runtimeSecret: env.TURNPIKE_RUNTIME_SECRET,
    prometheusUrl: env.TURNPIKE_PROMETHEUS_URL,
    serviceMonitors,
  };
}

/** The queues a worker consumes from, made sure of before it consumes. */
import { declareModelQueue, declareSharedTopology, DEFAULT_QUEUE_POLICY } from "../shared/amqp.js";
import type { AmqpSession } from "../shared/amqp-connection.js";
import { names, TENANT_PRIORITY, type ModelConfig, type RuntimeConfig } from "../shared/contracts/index.js";
import type { LaneDeclarer } from "../shared/lanes.js";
import type { FairClass } from "./fair-scheduler.js";

/** The lanes of `model` for every tenant of the config (declared if missing). */
export async function ensureLanes(
  session: AmqpSession,
  lanes: LaneDeclarer,
  config: RuntimeConfig,
  model: ModelConfig,
): Promise<string[]> {
  const queues: string[] = [];
  // Every tenant, not only those allowed the model: a pipeline they may call can start here.
  for (const tenant of config.tenants) queues.push(await lanes.ensure(session, model, tenant.name));
  return queues;
}

/** A tenant's priority and weight for the scheduler; tenants the config does not list get the defaults. */
export function fairClassOf(config: RuntimeConfig, tenant: string): FairClass {
  const found = config.tenants.find((t) => t.name === tenant);
  return { tenant, priority: found?.priority ?? TENANT_PRIORITY.normal, weight: found?.weight ?? 1 };
}

/**
 * Makes sure the queues exist. The operator owns the model queue's policy (max length, TTL...), so
 * an existing queue is only checked; a missing one (local runs, tests) is declared with the
 * defaults and the model's delivery limit. The shared queues use the one shared declaration.
 */
export async function ensureQueues(
  { connection, channel }: AmqpSession,
  prefix: string,
  model: ModelConfig,
): Promise<string> {
  await declareSharedTopology(channel, prefix);
  const queue = names(prefix).modelQueue(model.name);
  // A failed passive check closes its channel, so probe on a throwaway one.
  const probe = await connection.createChannel();
  probe.on("error", () => undefined);
  try {
    await probe.checkQueue(queue);
    await probe.close();
  } catch {
    await declareModelQueue(channel, prefix, model.name, {
      ...DEFAULT_QUEUE_POLICY,
      deliveryLimit: model.deliveryLimit,
    });
  }
  return queue;
}

/** The queues a worker consumes from, made sure of before it consumes. */
import { declareModelQueue, declareSharedTopology, DEFAULT_QUEUE_POLICY } from "../shared/amqp.js";
import type { AmqpSession } from "../shared/amqp-connection.js";
import { names, type ModelConfig } from "../shared/contracts/index.js";

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

/**
 * Tenant lanes: each tenant's requests for a model wait in a queue of their own (names.modelLane),
 * so a worker can choose fairly between tenants instead of taking one shared FIFO in order.
 *
 * The operator declares the model's own queue; a lane is declared by whichever process needs it
 * first (the gateway before its first publish, the worker before it consumes), with the model
 * queue's arguments from the runtime config, and only while the model's own queue exists. An existing lane is used as it is: re-asserting it with
 * arguments changed since (a new spec.queue) would fail with PRECONDITION_FAILED and close the
 * channel, so it is probed passively first, on a throwaway channel.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { modelQueueArguments, PublishRejectedError } from "./amqp.js";
import { names, type ModelConfig } from "./contracts/index.js";

/** Makes sure lanes exist, remembering the ones it has seen (per connection). */
export class LaneDeclarer {
  private readonly known = new WeakMap<ChannelModel, Set<string>>();

  constructor(private readonly prefix: string) {}

  /** Makes sure `tenant`'s lane of `model` exists; returns its name. */
  async ensure(
    session: { connection: ChannelModel; channel: ConfirmChannel },
    model: ModelConfig,
    tenant: string,
  ): Promise<string> {
    const lane = names(this.prefix).modelLane(model.name, tenant);
    let known = this.known.get(session.connection);
    if (!known) this.known.set(session.connection, (known = new Set()));
    if (known.has(lane)) return lane;
    const probe = await session.connection.createChannel();
    probe.on("error", () => undefined);
    try {
      await probe.checkQueue(lane);
      await probe.close().catch(() => undefined);
    } catch {
      // A lane only joins a model queue the operator (or a worker) declared: no lanes for a model
      // not deployed yet, and none re-created after its finalizer deleted its queues.
      const main = names(this.prefix).modelQueue(model.name);
      const check = await session.connection.createChannel();
      check.on("error", () => undefined);
      const exists = await check.checkQueue(main).then(
        () => true,
        () => false,
      );
      await check.close().catch(() => undefined);
      if (!exists) throw new PublishRejectedError(main, "no such queue");
      const policy = { ...model.queue, deliveryLimit: model.deliveryLimit };
      await session.channel.assertQueue(lane, {
        durable: true,
        arguments: modelQueueArguments(this.prefix, policy),
      });
    }
    known.add(lane);
    return lane;
  }
}

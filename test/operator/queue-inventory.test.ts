// The operator's queue inventory against the real RabbitMQ management API: a model queue declared
// after the shared listing began is described with the arguments it was declared with, so a spec
// change before the next listing is reported as the one argument it changes (it was reported as
// every argument "unset" when the listing was slow, e.g. on a broker holding many queues).
import amqp from "amqplib";
import { afterAll, describe, expect, it } from "vitest";
import { modelQueueArguments } from "../../runtime/shared/amqp.js";
import { names } from "../../runtime/shared/contracts/index.js";
import { QueueInventory } from "../../operator/inference-model/queue-inventory.js";
import { argumentDifferences } from "../../operator/inference-model/queue.js";
import { rabbitManagementUrl, serviceUrls, uniqueName } from "../harness/services.js";

const namespace = uniqueName("qinv");
const queue = names(namespace).modelQueue("ocr-rec");
const policy = { maxLength: 10_000, messageTtlSeconds: 600, deliveryLimit: 3, deadLetter: false };

describe("queue inventory", () => {
  const connection = amqp.connect(serviceUrls().amqpUrl);
  afterAll(async () => {
    const ch = await (await connection).createChannel();
    await ch.deleteQueue(queue);
    await (await connection).close();
  });

  it("describes a queue declared after its listing began with the arguments it was declared with", async () => {
    // A listing that stays current for a minute, as a slow one on a busy broker does.
    const inventory = new QueueInventory(rabbitManagementUrl(), 60_000);
    const before = await inventory.snapshot(namespace);
    expect(before.queues.has(queue)).toBe(false);

    const args = modelQueueArguments(namespace, policy);
    const ch = await (await connection).createChannel();
    await ch.assertQueue(queue, { durable: true, arguments: args });
    inventory.declared(queue, args);

    const seen = await inventory.inspect(namespace, queue);
    expect(seen?.arguments).toEqual(args);
    expect(await inventory.needsDeclaration(namespace, queue, args)).toBe(false);

    const changed = modelQueueArguments(namespace, { ...policy, maxLength: 20_000 });
    expect(await inventory.needsDeclaration(namespace, queue, changed)).toBe(true);
    expect(argumentDifferences(seen!.arguments, changed)).toEqual([
      expect.stringContaining("x-max-length is 10000 on the queue, but spec.queue.maxLength asks for 20000"),
    ]);
  });
});

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
const n = names(namespace);
const queue = n.modelQueue("ocr-rec");
const policy = { maxLength: 10_000, messageTtlSeconds: 600, deliveryLimit: 3, deadLetter: false };

// Tenant lanes of `queue`'s model, and queues that only look alike (another model whose name
// starts with this one's, that model's lane, a lane-like name with a dot in the tenant).
const lanes = [n.modelLane("ocr-rec", "acme"), n.modelLane("ocr-rec", "beta-2")];
const lookalikes = [n.modelQueue("ocr-rec-2"), n.modelLane("ocr-rec-2", "acme"), `${queue}.tenant.a.b`];

describe("queue inventory", () => {
  const connection = amqp.connect(serviceUrls().amqpUrl);
  afterAll(async () => {
    const ch = await (await connection).createChannel();
    for (const name of [queue, ...lanes, ...lookalikes]) await ch.deleteQueue(name);
    await (await connection).close();
  });

  it("reads a model's tenant lanes from the listing, exactly the queues its pattern matches besides its own", async () => {
    const ch = await (await connection).createChannel();
    for (const name of [queue, ...lanes, ...lookalikes]) await ch.assertQueue(name, { durable: false });
    const inventory = new QueueInventory(rabbitManagementUrl(), 0);
    const found = (await inventory.lanesOf(namespace, queue)).map((q) => q.name).sort();
    expect(found).toEqual([...lanes].sort());
    const pattern = new RegExp(n.modelQueuePattern("ocr-rec"));
    const listed = [...(await inventory.snapshot(namespace)).queues.keys()];
    expect(listed.filter((name) => name !== queue && pattern.test(name)).sort()).toEqual(found);
    await ch.deleteQueue(queue); // the next test declares it itself
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

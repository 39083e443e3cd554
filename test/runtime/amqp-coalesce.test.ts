// Frames queued in one turn leave the socket in one write, on a real RabbitMQ connection, and
// publishing with confirms, consuming and acking still work through it.
import { randomUUID } from "node:crypto";
import type { Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChannelModel } from "amqplib";
import { connectAmqp } from "../../runtime/shared/amqp.js";
import { serviceUrls } from "../harness/services.js";

let connection: ChannelModel;
const queue = `test-coalesce-${randomUUID()}`;

beforeAll(async () => {
  connection = await connectAmqp(serviceUrls().amqpUrl, "test-coalesce");
});

afterAll(async () => {
  const channel = await connection.createChannel();
  await channel.deleteQueue(queue).catch(() => undefined);
  await connection.close();
});

describe("coalesced AMQP writes", () => {
  it("sends 100 publishes made in one tick in a few socket writes, all confirmed and delivered", async () => {
    const channel = await connection.createConfirmChannel();
    await channel.assertQueue(queue, { durable: false, autoDelete: false });
    const socket = (connection as unknown as { connection: { stream: Socket } }).connection.stream;
    let writes = 0;
    const write = socket._write.bind(socket);
    const writev = socket._writev?.bind(socket);
    socket._write = (...args: Parameters<Socket["_write"]>) => (writes++, write(...args));
    if (writev)
      socket._writev = (...args: Parameters<NonNullable<Socket["_writev"]>>) => (writes++, writev(...args));
    const confirmed = Array.from(
      { length: 100 },
      (_, i) =>
        new Promise<void>((resolve, reject) =>
          channel.sendToQueue(queue, Buffer.from(String(i)), {}, (error) =>
            error ? reject(error) : resolve(),
          ),
        ),
    );
    await Promise.all(confirmed);
    socket._write = write;
    if (writev) socket._writev = writev;
    expect(writes).toBeLessThan(10);

    const got: string[] = [];
    await new Promise<void>((resolve) => {
      void channel.consume(queue, (message) => {
        if (!message) return;
        got.push(message.content.toString());
        channel.ack(message);
        if (got.length === 100) resolve();
      });
    });
    expect(got).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    await channel.close();
  });
});

/** RabbitMQ's management API, for tests that make the broker drop a client's connection. */
import { expect } from "vitest";
import { serviceUrls } from "../../harness/services.js";
import { waitFor } from "./collector-harness.js";

/** Closes the client connection named `connectionName` from the broker side, like a network drop. */
export async function dropAmqpConnection(connectionName: string): Promise<void> {
  const urls = serviceUrls();
  const auth = `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
  const found = await waitFor(`the AMQP connection ${connectionName} in the management API`, async () => {
    const res = await fetch(`${urls.rabbitManagementUrl}/api/connections?columns=name,client_properties`, {
      headers: { authorization: auth },
    });
    const list = (await res.json()) as { name: string; client_properties?: { connection_name?: string } }[];
    return list.find((c) => c.client_properties?.connection_name === connectionName)?.name;
  });
  const res = await fetch(`${urls.rabbitManagementUrl}/api/connections/${encodeURIComponent(found)}`, {
    method: "DELETE",
    headers: { authorization: auth, "x-reason": "test: simulated network drop" },
  });
  expect(res.status).toBe(204);
}

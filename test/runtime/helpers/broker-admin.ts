/** RabbitMQ's management API, for tests that make the broker drop a client's connection. */
import { expect } from "vitest";
import { serviceUrls } from "../../harness/services.js";
import { waitFor } from "./collector-harness.js";

/** The broker's names of the open client connections named `connectionName` (client property). */
export async function amqpConnections(connectionName: string): Promise<string[]> {
  const urls = serviceUrls();
  const res = await fetch(`${urls.rabbitManagementUrl}/api/connections?columns=name,client_properties`, {
    headers: { authorization: auth() },
  });
  const list = (await res.json()) as { name: string; client_properties?: { connection_name?: string } }[];
  return list.filter((c) => c.client_properties?.connection_name === connectionName).map((c) => c.name);
}

/**
 * Closes the client connection named `connectionName` from the broker side, like a network drop;
 * returns the broker's name of the connection it closed.
 */
export async function dropAmqpConnection(connectionName: string): Promise<string> {
  const urls = serviceUrls();
  const found = await waitFor(
    `the AMQP connection ${connectionName} in the management API`,
    async () => (await amqpConnections(connectionName))[0],
  );
  const res = await fetch(`${urls.rabbitManagementUrl}/api/connections/${encodeURIComponent(found)}`, {
    method: "DELETE",
    headers: { authorization: auth(), "x-reason": "test: simulated network drop" },
  });
  expect(res.status).toBe(204);
  return found;
}

function auth(): string {
  const urls = serviceUrls();
  return `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
}

/** Deletes every tenant lane of the installation `prefix` (runtime/shared/lanes.ts) through the management API. */
export async function deleteLanes(prefix: string): Promise<void> {
  const urls = serviceUrls();
  const headers = { authorization: auth() };
  const pattern = `^turnpike\\.${prefix.replace(/\./g, "\\.")}\\.model\\.[^.]+\\.tenant\\.`;
  const res = await fetch(
    `${urls.rabbitManagementUrl}/api/queues?columns=name,vhost&use_regex=true&name=${encodeURIComponent(pattern)}`,
    { headers },
  );
  if (!res.ok) return;
  const queues = (await res.json()) as { name: string; vhost: string }[];
  for (const q of queues.filter((q) => new RegExp(pattern).test(q.name))) {
    await fetch(
      `${urls.rabbitManagementUrl}/api/queues/${encodeURIComponent(q.vhost)}/${encodeURIComponent(q.name)}`,
      { method: "DELETE", headers },
    );
  }
}

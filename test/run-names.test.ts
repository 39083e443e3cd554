// The suite's teardown deletes broker objects left under the run's own names, and nothing else:
// real RabbitMQ, through the management API the teardown uses.
import { connect } from "amqplib";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { deleteRunLeftovers, leftoverNames, RUN_NAMES_ENV } from "./harness/run-names.js";
import { serviceUrls, uniqueName } from "./harness/services.js";

const urls = serviceUrls();
const dir = mkdtempSync(join(tmpdir(), "turnpike-run-names-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function exists(kind: "queues" | "exchanges", name: string): Promise<boolean> {
  const auth = Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64");
  const res = await fetch(`${urls.rabbitManagementUrl}/api/${kind}/%2F/${encodeURIComponent(name)}`, {
    headers: { authorization: `Basic ${auth}` },
  });
  return res.status === 200;
}

describe("run names", () => {
  it("matches only objects directly under a recorded name", () => {
    expect(
      leftoverNames(
        [
          "turnpike.a-1.results",
          "turnpike.a-1.model.x.tenant.y",
          "turnpike.a-12.results",
          "turnpike.b.dlx",
          "a-1.x",
        ],
        ["a-1"],
      ),
    ).toEqual(["turnpike.a-1.results", "turnpike.a-1.model.x.tenant.y"]);
  });

  it("records every unique name of this worker in the run's file", () => {
    const name = uniqueName("recorded");
    expect(readFileSync(process.env[RUN_NAMES_ENV]!, "utf8").split("\n")).toContain(name);
  });

  it("deletes the queues and exchanges left under recorded names and keeps the others", async () => {
    const mine = uniqueName("left");
    const other = uniqueName("kept");
    const file = join(dir, "names");
    writeFileSync(file, `${mine}\n`);
    const connection = await connect(urls.amqpUrl);
    const channel = await connection.createChannel();
    const quorum = { durable: true, arguments: { "x-queue-type": "quorum" } };
    await channel.assertQueue(`turnpike.${mine}.results`, quorum);
    await channel.assertExchange(`turnpike.${mine}.dlx`, "fanout", { durable: true });
    await channel.assertQueue(`turnpike.${other}.results`, quorum);
    try {
      expect(await deleteRunLeftovers(file, urls)).toBe(2);
      expect(await exists("queues", `turnpike.${mine}.results`)).toBe(false);
      expect(await exists("queues", `turnpike.${other}.results`)).toBe(true);
      expect(await exists("exchanges", `turnpike.${mine}.dlx`)).toBe(false);
    } finally {
      await channel.deleteQueue(`turnpike.${other}.results`);
      await connection.close();
    }
  });
});

// A worker outlasts the loss of its RabbitMQ connection in-process: the broker drops the
// connection mid-stream (as when RabbitMQ restarts or the network blips), the worker opens a new
// one with its model still loaded, is ready again, and answers every request, the ones in flight
// at the drop included, without exiting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferenceResult } from "../../runtime/shared/contracts/index.js";
import { encodeTensor } from "../../runtime/shared/tensors.js";
import { startWorker, type Worker } from "../../runtime/worker/worker.js";
import { uniqueName } from "../harness/services.js";
import { amqpConnections, dropAmqpConnection } from "./helpers/broker-admin.js";
import {
  BrokerClient,
  eventually,
  makeTask,
  runtimeConfig,
  tinyModelUris,
  workerEnv,
} from "./helpers/worker-fixtures.js";

const prefix = uniqueName("w-reconnect");
// Unique, so that the connection name (turnpike-worker-<model>) is this test's alone.
const model = uniqueName("echo-rc");
const config = runtimeConfig(prefix, {
  models: [{ name: model, uri: tinyModelUris().echo, batching: { maxBatchSize: 4, maxDelayMs: 5 } }],
});

function tasks(count: number) {
  const x = encodeTensor({ name: "x", datatype: "FP32", shape: [1, 4], data: [[1, 2, 3, 4]] });
  return Array.from({ length: count }, () =>
    makeTask({ kind: "model", name: model }, [{ step: model, model }], [x]),
  );
}

/** Results until every id of `ids` has one (a redelivery may answer one twice: the collector dedups). */
async function answersFor(broker: BrokerClient, ids: string[]): Promise<InferenceResult[]> {
  const all: InferenceResult[] = [];
  const missing = () => ids.filter((id) => !all.some((r) => r.requestId === id));
  while (missing().length > 0) all.push(...(await broker.results(missing().length, 60_000)));
  return all;
}

describe("worker connection loss", () => {
  let broker: BrokerClient;
  let worker: Worker;
  const fatal: Error[] = [];

  beforeAll(async () => {
    broker = await BrokerClient.connect(prefix);
    worker = await startWorker({
      env: workerEnv({ TURNPIKE_PREFETCH: "8" }),
      config,
      model,
      onFatal: (error) => fatal.push(error),
    });
    await worker.ready;
  });

  afterAll(async () => {
    await worker?.close();
    await broker?.cleanup([model]);
  });

  it("reconnects in-process and answers every request, those in flight at the drop included", async () => {
    const first = tasks(20);
    await Promise.all(first.map((t) => broker.publishTask(model, t)));
    await answersFor(
      broker,
      first.map((t) => t.requestId),
    );

    const during = tasks(40);
    await Promise.all(during.map((t) => broker.publishTask(model, t)));
    const connection = `turnpike-worker-${model}`;
    const dropped = await dropAmqpConnection(connection);
    // A new connection of the same worker replaces the dropped one (the management API lists
    // connections a few seconds late), and the worker is ready again.
    await eventually(async () => {
      const open = await amqpConnections(connection);
      return open.length === 1 && open[0] !== dropped;
    }, 30_000);
    await eventually(async () => (await fetch(`${worker.url}/readyz`)).status === 200, 30_000);

    const after = tasks(10);
    await Promise.all(after.map((t) => broker.publishTask(model, t)));
    const answers = await answersFor(
      broker,
      [...during, ...after].map((t) => t.requestId),
    );
    expect(answers.every((r) => r.status === "succeeded")).toBe(true);
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
    expect(fatal).toEqual([]);
  });
});

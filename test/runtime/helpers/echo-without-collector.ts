/**
 * An echo model behind a gateway and one worker, with no collector running: what the tests of the
 * worker-to-gateway answer path share (answers given before any record exists; the collectors a
 * test starts later, and their hooks, then record and charge what waited in the results queues).
 */
import { startCollector, type Collector } from "../../../runtime/collector/collector.js";
import type { CollectorHooks } from "../../../runtime/collector/result-consumer.js";
import { startWorker, type Worker } from "../../../runtime/worker/worker.js";
import { runtimeEnv } from "../../harness/services.js";
import { gatewayFixture, standardTenants, type GatewayFixture } from "./gateway-fixture.js";
import { tinyModelUris, workerEnv } from "./worker-fixtures.js";

export interface EchoWithoutCollector {
  fx: GatewayFixture;
  worker: Worker;
  /** Starts a collector (flushing every millisecond) that close() stops. */
  collector(hooks?: CollectorHooks): Promise<Collector>;
  /** Stops a collector started by collector() (a graceful close: it acknowledges what it recorded). */
  closeCollector(c: Collector): Promise<void>;
  close(): Promise<void>;
}

/** The tenant `acme` may call `echo` (FP32 [-1, 4] in and out, 1 token per request). */
export async function echoWithoutCollector(options: {
  workerId: string;
  batching: { maxBatchSize: number; maxDelayMs: number };
}): Promise<EchoWithoutCollector> {
  const fx = await gatewayFixture({
    config: {
      models: [
        {
          name: "echo",
          uri: tinyModelUris().echo,
          inputs: [{ name: "x", datatype: "FP32", shape: [-1, 4] }],
          outputs: [{ name: "y", datatype: "FP32", shape: [-1, 4] }],
          tokens: { mode: "fixed", maxOutputTokens: 5, unitsPerRequest: 1 },
          batching: options.batching,
        },
      ],
      tenants: [{ name: "acme", models: [] }],
    },
    tenants: standardTenants().filter((t) => t.name === "acme"),
    queues: { echo: {} },
    collector: false,
  });
  const worker = await startWorker({
    env: workerEnv({ TURNPIKE_WORKER_ID: options.workerId }),
    config: fx.config,
    model: "echo",
  });
  await worker.ready;
  const collectors: Collector[] = [];
  return {
    fx,
    worker,
    async collector(hooks) {
      const c = await startCollector({
        env: { ...runtimeEnv(fx.schema), TURNPIKE_COLLECTOR_FLUSH_MS: "1" },
        config: fx.config,
        hooks,
      });
      collectors.push(c);
      return c;
    },
    async closeCollector(c) {
      collectors.splice(collectors.indexOf(c), 1);
      await c.close();
    },
    async close() {
      for (const c of collectors.splice(0)) await c.close().catch(() => undefined);
      await worker.close();
      await fx.close();
    },
  };
}

/**
 * The generative path on real services for tests: a gateway fixture (with the real collector)
 * whose runtime config serves SmolLM2-135M-Instruct (GGUF, cached by hack/fetch-llm-model.sh) to
 * the given tenants, and a real worker running it. Plus the official `openai` client pointed at
 * the gateway.
 */
import OpenAI from "openai";
import type { RuntimeConfigInput } from "../../../runtime/shared/contracts/index.js";
import { startWorker, type Worker } from "../../../runtime/worker/worker.js";
import { gatewayFixture, type FixtureTenant, type GatewayFixture } from "./gateway-fixture.js";
import { smolLm2Path } from "./llm-fixture.js";
import { workerEnv } from "./worker-fixtures.js";

/** The model's name in the runtime config. */
export const SMOLLM2 = "smollm2";

type ModelInput = NonNullable<RuntimeConfigInput["models"]>[number];

export interface SmolLm2StackOptions {
  /** The model's settings (batching, tokens, cache); name, uri, format, task and threads are filled in. */
  model: Omit<ModelInput, "name" | "uri" | "format" | "task" | "threads">;
  /** The tenants, each also in the runtime config. */
  tenants: FixtureTenant[];
}

export interface SmolLm2Stack {
  fx: GatewayFixture;
  worker: Worker;
  /** Path of the cached .gguf (for smolLm2Tokenizer). */
  path: string;
  close(): Promise<void>;
}

export async function smolLm2Stack(options: SmolLm2StackOptions): Promise<SmolLm2Stack> {
  const path = smolLm2Path();
  const fx = await gatewayFixture({
    config: {
      models: [
        {
          name: SMOLLM2,
          uri: `file://${path}`,
          format: "gguf",
          task: "text-generation",
          threads: 2,
          ...options.model,
        },
      ],
      tenants: options.tenants.map(({ name }) => ({ name })),
    },
    tenants: options.tenants,
    queues: { [SMOLLM2]: {} },
    collector: true,
  });
  let started: Worker | undefined;
  try {
    started = await startWorker({ env: workerEnv(), config: fx.config, model: SMOLLM2 });
    await started.ready;
  } catch (error) {
    await started?.close().catch(() => undefined);
    await fx.close();
    throw error;
  }
  const worker = started;
  return {
    fx,
    worker,
    path,
    close: async () => {
      await worker.close();
      await fx.close();
    },
  };
}

/** The unmodified `openai` client on the fixture's gateway, without retries. */
export function openAiClient(fx: GatewayFixture, apiKey: string): OpenAI {
  return new OpenAI({ baseURL: `${fx.url}/v1`, apiKey, maxRetries: 0 });
}

/** The request id behind an OpenAI id (`chatcmpl-<uuid>`, `cmpl-<uuid>`). */
export const requestIdOf = (id: string) => id.replace(/^(chatcmpl|cmpl)-/, "");

/**
 * SmolLM2-135M-Instruct (GGUF) for tests: fetched once into the cache by hack/fetch-llm-model.sh,
 * plus its tokenizer loaded in-process (vocabulary only) to check the counts the system reports.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import { chatPrompt } from "../../../runtime/worker/engines/llama/chat-prompt.js";
import type {
  ChatMessage,
  GenerationRequestInput,
  ModelConfig,
} from "../../../runtime/shared/contracts/index.js";
import { generationRequestSchema } from "../../../runtime/shared/contracts/index.js";
import { LlamaEngine } from "../../../runtime/worker/engines/llama/llama-engine.js";
import { logger } from "../../../runtime/shared/logger.js";
import { repoRoot } from "../../harness/kube.js";

/** Path of the cached .gguf (fetched on first use). */
export function smolLm2Path(): string {
  const out = execFileSync("bash", [join(repoRoot, "hack/fetch-llm-model.sh")], { encoding: "utf8" });
  return out.trim().split("\n").at(-1)!;
}

/** The model's own tokenizer, counting tokens as the engine evaluates them (BOS included). */
export async function smolLm2Tokenizer(path: string) {
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true });
  const model: LlamaModel = await llama.loadModel({ modelPath: path, vocabOnly: true });
  const template = chatPrompt(String(model.fileInfo.metadata?.tokenizer?.chat_template));
  const bos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? 1 : 0;
  return {
    text: (text: string) => model.tokenize(text).length,
    prompt: (text: string) => model.tokenize(text).length + bos,
    chat: (messages: ChatMessage[]) => model.tokenize(template.render(messages), true).length + bos,
    close: async () => {
      await model.dispose();
      await llama.dispose();
    },
  };
}

/** What {@link smolLm2Tokenizer} gives. */
export type SmolLm2Tokenizer = Awaited<ReturnType<typeof smolLm2Tokenizer>>;

/**
 * The model's own answers, generated in this process by the worker's engine alone (no gateway,
 * queue or collector) with `config` as the worker has it. Greedy decoding is exactly reproducible
 * on one machine but not across CPUs (llama.cpp picks other kernels with AVX-512 than with AVX2,
 * and a near tie can then go the other way), so tests compare the served text with this instead of
 * a text written down on one machine.
 */
export async function smolLm2Reference(config: ModelConfig, path: string) {
  const engine = await LlamaEngine.load(config, path, logger("llm-reference"));
  return {
    generate: async (input: GenerationRequestInput) => {
      const request = generationRequestSchema.parse(input);
      return (await engine.generate(request, { maxTokens: request.maxTokens })).text;
    },
    close: () => engine.close(),
  };
}

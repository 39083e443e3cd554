/**
 * SmolLM2-135M-Instruct (GGUF) for tests: fetched once into the cache by hack/fetch-llm-model.sh,
 * plus its tokenizer loaded in-process (vocabulary only) to check the counts the system reports.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { getLlama, type LlamaModel } from "node-llama-cpp";
import { chatPrompt } from "../../../runtime/worker/engines/llama/chat-prompt.js";
import type { ChatMessage } from "../../../runtime/shared/contracts/index.js";
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

/**
 * Runs generative GGUF models with node-llama-cpp. Its CPU build ships inside the npm package
 * `@node-llama-cpp/linux-x64`; the engine loads it with `build: "never"` and `skipDownload`, so it
 * never compiles or downloads anything. One context holds `batching.maxBatchSize` sequences:
 * requests generate side by side (continuous batching), each in its own sequence, so one long
 * answer does not hold up short ones.
 */
import { performance } from "node:perf_hooks";
import {
  getLlama,
  LlamaCompletion,
  LlamaLogLevel,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import {
  type FinishReason,
  type GenerationRequest,
  type ModelConfig,
} from "../../../shared/contracts/index.js";
import type { Logger } from "../../../shared/logger.js";
import { chatPrompt, type ChatPrompt } from "./chat-prompt.js";

/** Tokens per sequence when the model's own training context is larger (memory stays bounded). */
export const DEFAULT_CONTEXT_TOKENS = 2048;

/** What one generation produced; token counts are the model tokenizer's, exactly. */
export interface Generation {
  text: string;
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

/** A prompt the engine refuses before generating (too long for the context, no template). */
export class PromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PromptError";
  }
}

/** A loaded GGUF model with one context of parallel sequences. */
export class LlamaEngine {
  private broken: Error | undefined;
  /** Aborted by close(): generations still running stop at their next token. */
  private readonly closing = new AbortController();
  private readonly active = new Set<Promise<unknown>>();
  private readonly waiting: ((sequence: LlamaContextSequence) => void)[] = [];
  /** Sequences not generating now; each is reused, its history cleared before the next request. */
  private readonly free: LlamaContextSequence[] = [];

  private constructor(
    readonly config: ModelConfig,
    readonly path: string,
    private readonly llama: Llama,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly chat: ChatPrompt | undefined,
    readonly loadSeconds: number,
  ) {
    for (let i = 0; i < context.totalSequences; i++) this.free.push(context.getSequence());
  }

  /** Loads `path` on the CPU build; throws a contextual error when it cannot serve. */
  static async load(config: ModelConfig, path: string, log: Logger): Promise<LlamaEngine> {
    const started = performance.now();
    const llama = await getLlama({
      gpu: false,
      build: "never",
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: LlamaLogLevel.error,
      logger: (level, message) => log.debug({ level }, message.trim()),
      maxThreads: config.threads,
    });
    try {
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const sequences = config.batching.maxBatchSize;
      const perSequence = Math.min(model.trainContextSize, DEFAULT_CONTEXT_TOKENS);
      const context = await model.createContext({
        sequences,
        contextSize: perSequence * sequences,
        threads: config.threads,
      });
      const template = model.fileInfo.metadata?.tokenizer?.chat_template;
      const chat = template
        ? chatPrompt(String(template), {
            bos: model.tokens.bosString ?? undefined,
            eos: model.tokens.eosString ?? undefined,
          })
        : undefined;
      const engine = new LlamaEngine(
        config,
        path,
        llama,
        model,
        context,
        chat,
        (performance.now() - started) / 1000,
      );
      log.info(
        { path, sequences, contextPerSequence: perSequence, loadSeconds: engine.loadSeconds },
        "generative model loaded",
      );
      return engine;
    } catch (cause) {
      await llama.dispose().catch(() => undefined);
      throw new Error(`loading model ${config.name} from ${path}`, { cause });
    }
  }

  /** Tokens each sequence can hold (prompt plus completion). */
  get contextTokens(): number {
    return Math.floor(this.context.contextSize / this.context.totalSequences);
  }

  /** Set once the model can no longer run at all: not the request's fault. */
  failure(): Error | undefined {
    return this.broken;
  }

  /**
   * The prompt's tokens (template and special tokens applied) and how many the model evaluates:
   * node-llama-cpp prepends the BOS token itself when the model asks for one, so it counts here.
   */
  prompt(request: GenerationRequest): { tokens: Token[]; count: number } {
    let text: string;
    if (request.kind === "chat") {
      if (!this.chat)
        throw new PromptError(`model ${this.config.name} has no chat template; use completions`);
      try {
        text = this.chat.render(request.messages!);
      } catch (error) {
        // Templates refuse some conversations (e.g. roles that do not alternate): the request's fault.
        throw new PromptError(`the chat template refused the messages: ${(error as Error).message}`);
      }
    } else text = request.prompt!;
    const tokens = this.model.tokenize(text, request.kind === "chat");
    const bos = this.model.tokens.shouldPrependBosToken && this.model.tokens.bos !== null;
    return { tokens, count: tokens.length + (bos ? 1 : 0) };
  }

  /**
   * Generates for one request in a sequence of its own (waiting for one to be free). `maxTokens`
   * caps the completion (the caller's budget); `onText` receives the text as it is generated;
   * aborting `signal` stops the generation and returns what was generated (finish `cancelled`).
   */
  async generate(
    request: GenerationRequest,
    options: { maxTokens: number; onText?: (text: string) => void; signal?: AbortSignal },
  ): Promise<Generation> {
    const prompt = this.prompt(request);
    const room = this.contextTokens - prompt.count;
    if (room < 1) {
      throw new PromptError(
        `the prompt has ${prompt.count} tokens; this model's context holds ${this.contextTokens}`,
      );
    }
    const maxTokens = Math.min(options.maxTokens, room);
    if (options.signal?.aborted) {
      return { text: "", finishReason: "cancelled", promptTokens: 0, completionTokens: 0 };
    }
    const running = this.run(request, prompt, maxTokens, options);
    this.active.add(running);
    try {
      return await running;
    } finally {
      this.active.delete(running);
    }
  }

  private async run(
    request: GenerationRequest,
    prompt: { tokens: Token[]; count: number },
    maxTokens: number,
    options: { onText?: (text: string) => void; signal?: AbortSignal },
  ): Promise<Generation> {
    if (this.closing.signal.aborted) throw this.broken ?? new Error("the model was released");
    const signal = options.signal
      ? AbortSignal.any([options.signal, this.closing.signal])
      : this.closing.signal;
    const sequence = await this.acquire();
    let completionTokens = 0;
    try {
      const completion = new LlamaCompletion({ contextSequence: sequence });
      try {
        const { response, metadata } = await completion.generateCompletionWithMeta(prompt.tokens, {
          maxTokens,
          temperature: request.temperature,
          topP: request.topP,
          ...(request.seed !== undefined ? { seed: request.seed } : {}),
          customStopTriggers: request.stop,
          signal,
          stopOnAbortSignal: true,
          disableContextShift: true,
          onToken: (tokens) => (completionTokens += tokens.length),
          onTextChunk: options.onText,
        });
        const finishReason: FinishReason =
          metadata.stopReason === "maxTokens"
            ? "length"
            : metadata.stopReason === "abort"
              ? "cancelled"
              : "stop";
        return { text: response, finishReason, promptTokens: prompt.count, completionTokens };
      } finally {
        completion.dispose({ disposeSequence: false });
      }
    } catch (error) {
      if (this.context.disposed || this.model.disposed) this.broken ??= error as Error;
      throw error;
    } finally {
      this.release(sequence);
    }
  }

  /** Frees the context, the model and the native backend. */
  async close(): Promise<void> {
    this.broken ??= new Error("the model was released");
    this.closing.abort();
    await Promise.allSettled([...this.active]);
    await this.context.dispose().catch(() => undefined);
    await this.model.dispose().catch(() => undefined);
    await this.llama.dispose().catch(() => undefined);
  }

  private async acquire(): Promise<LlamaContextSequence> {
    const sequence =
      this.free.pop() ?? (await new Promise<LlamaContextSequence>((resolve) => this.waiting.push(resolve)));
    // A fresh start for every request: its answer must not depend on who used the sequence before.
    await sequence.clearHistory();
    return sequence;
  }

  private release(sequence: LlamaContextSequence): void {
    const next = this.waiting.shift();
    if (next) next(sequence);
    else this.free.push(sequence);
  }
}

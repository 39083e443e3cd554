/**
 * Section 5, generative text: SmolLM2-135M-Instruct (GGUF) in node-llama-cpp in-process (the same
 * engine class, threads and parallel sequences the worker uses) versus end to end through the real
 * roles as separate processes (gateway -> RabbitMQ -> worker -> gateway's own queue -> SSE), with
 * the unmodified `openai` client. Reports tokens/s both ways (a ratio) and the time to first token
 * each way: the difference is what the queue adds.
 */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import OpenAI from "openai";
import { type ChatMessage, modelConfigSchema } from "../../runtime/shared/contracts/index.js";
import { logger } from "../../runtime/shared/logger.js";
import { LlamaEngine } from "../../runtime/worker/engines/llama/llama-engine.js";
import { onInterrupt, repoRoot, say } from "../lib/env.js";
import { summarize, type LatencySummary } from "../lib/stats.js";
import { API_KEY, Installation, TENANT } from "./end-to-end.js";

const SEQUENCES = 4;
const THREADS = 2;
const MAX_TOKENS = 64;
const TOPICS = ["the sea", "a mountain", "the moon", "a library", "trains", "winter", "bees", "a city"];

/** One way of generating: tokens per second over parallel requests, and time to first token. */
export interface LlmWay {
  tokensPerSecond: number;
  completionTokens: number;
  seconds: number;
  ttft: LatencySummary;
}

export interface LlmResult {
  inProcess: LlmWay;
  endToEnd: LlmWay;
  /** End-to-end tokens/s over in-process tokens/s. */
  ratio: number;
  /** End-to-end minus in-process time to first token, p50 and p99 (ms). */
  queueAddedTtftMs: { p50: number; p99: number };
  config: { sequences: number; threads: number; maxTokens: number };
}

const messages = (i: number): ChatMessage[] => [
  { role: "user", content: `Write three sentences about ${TOPICS[i % TOPICS.length]}.` },
];

/** `rounds` rounds of SEQUENCES parallel requests, then `firsts` single requests for TTFT. */
export async function llmBench(rounds: number, firsts: number): Promise<LlmResult> {
  const path = execFileSync("bash", [join(repoRoot, "hack/fetch-llm-model.sh")], { encoding: "utf8" })
    .trim()
    .split("\n")
    .at(-1)!;
  const model = {
    name: "smollm2",
    uri: `file://${path}`,
    format: "gguf" as const,
    task: "text-generation" as const,
    batching: { maxBatchSize: SEQUENCES, maxDelayMs: 0 },
    tokens: { maxOutputTokens: MAX_TOKENS },
    threads: THREADS,
  };

  say("llm: in-process node-llama-cpp");
  const engine = await LlamaEngine.load(modelConfigSchema.parse(model), path, logger("bench"));
  let inProcess: LlmWay;
  try {
    const request = (i: number) => ({
      kind: "chat" as const,
      messages: messages(i),
      maxTokens: MAX_TOKENS,
      temperature: 0,
      topP: 1,
      seed: i,
      stop: [],
    });
    await engine.generate(request(0), { maxTokens: 8 });
    inProcess = await measure(rounds, firsts, async (i, onFirst) => {
      const g = await engine.generate(request(i), { maxTokens: MAX_TOKENS, onText: onFirst });
      return g.completionTokens;
    });
  } finally {
    await engine.close();
  }

  say("llm: end to end (gateway, worker, collector as processes)");
  const install = new Installation({ models: [model], tenants: [{ name: TENANT }] });
  const forget = onInterrupt(() => install.teardown([model.name]));
  let endToEnd: LlmWay;
  try {
    await install.seedTenant();
    await install.start("collector");
    await install.start("worker", { TURNPIKE_MODEL: model.name });
    const { url } = await install.start("gateway");
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: API_KEY, maxRetries: 0 });
    const chat = async (i: number, onFirst: () => void) => {
      const stream = await client.chat.completions.create({
        model: model.name,
        messages: messages(i),
        max_tokens: MAX_TOKENS,
        temperature: 0,
        seed: i,
        stream: true,
        stream_options: { include_usage: true },
      });
      let tokens = 0;
      for await (const chunk of stream) {
        if (chunk.choices[0]?.delta.content) onFirst();
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
      }
      return tokens;
    };
    await chat(0, () => undefined);
    endToEnd = await measure(rounds, firsts, chat);
  } finally {
    await install.teardown([model.name]);
    forget();
  }
  return {
    inProcess,
    endToEnd,
    ratio: Math.round((endToEnd.tokensPerSecond / inProcess.tokensPerSecond) * 1000) / 1000,
    queueAddedTtftMs: {
      p50: Math.round(endToEnd.ttft.p50Ms - inProcess.ttft.p50Ms),
      p99: Math.round(endToEnd.ttft.p99Ms - inProcess.ttft.p99Ms),
    },
    config: { sequences: SEQUENCES, threads: THREADS, maxTokens: MAX_TOKENS },
  };
}

/** Throughput of parallel rounds, then time to first token of requests one at a time. */
async function measure(
  rounds: number,
  firsts: number,
  generate: (i: number, onFirst: () => void) => Promise<number>,
): Promise<LlmWay> {
  let completionTokens = 0;
  const started = performance.now();
  for (let r = 0; r < rounds; r++) {
    const counts = await Promise.all(
      Array.from({ length: SEQUENCES }, (_, s) => generate(r * SEQUENCES + s, () => undefined)),
    );
    completionTokens += counts.reduce((a, b) => a + b, 0);
  }
  const seconds = (performance.now() - started) / 1000;
  const ttfts: number[] = [];
  for (let i = 0; i < firsts; i++) {
    const t0 = performance.now();
    let first: number | undefined;
    await generate(i, () => (first ??= performance.now() - t0));
    if (first !== undefined) ttfts.push(first);
  }
  return {
    tokensPerSecond: Math.round((completionTokens / seconds) * 10) / 10,
    completionTokens,
    seconds: Math.round(seconds * 10) / 10,
    ttft: summarize(ttfts),
  };
}

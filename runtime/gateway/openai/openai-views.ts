/** OpenAI response and stream-chunk documents, pure. */
import type { FinishReason } from "../../shared/contracts/index.js";

/** Token usage as OpenAI reports it. */
export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

/** What both kinds of answer are built from. */
export interface Answer {
  id: string;
  model: string;
  created: number;
  text: string;
  /** `cancelled` never reaches a client that is still there; it reads as `stop`. */
  finishReason: FinishReason;
  promptTokens: number;
  completionTokens: number;
}

export function usage(promptTokens: number, completionTokens: number): Usage {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

const openAiFinish = (reason: FinishReason) => (reason === "length" ? "length" : "stop");

/** The document both answers share; `choice` is the kind's own (message or text). */
function completion(a: Answer, idPrefix: string, object: string, choice: Record<string, unknown>) {
  return {
    id: `${idPrefix}-${a.id}`,
    object,
    created: a.created,
    model: a.model,
    choices: [{ index: 0, ...choice, logprobs: null, finish_reason: openAiFinish(a.finishReason) }],
    usage: usage(a.promptTokens, a.completionTokens),
  };
}

export function chatCompletion(a: Answer) {
  return completion(a, "chatcmpl", "chat.completion", {
    message: { role: "assistant", content: a.text, refusal: null },
  });
}

export function textCompletion(a: Answer) {
  return completion(a, "cmpl", "text_completion", { text: a.text });
}

/** Stream chunks of one request, for chat (`chat.completion.chunk`) or completions. */
export function chunkMaker(kind: "chat" | "completion", id: string, model: string, created: number) {
  const head =
    kind === "chat"
      ? { id: `chatcmpl-${id}`, object: "chat.completion.chunk", created, model }
      : { id: `cmpl-${id}`, object: "text_completion", created, model };
  const choice = (text: string | undefined, finish: FinishReason | null, first = false) =>
    kind === "chat"
      ? {
          index: 0,
          delta: first ? { role: "assistant", content: "" } : text === undefined ? {} : { content: text },
          logprobs: null,
          finish_reason: finish && openAiFinish(finish),
        }
      : { index: 0, text: text ?? "", logprobs: null, finish_reason: finish && openAiFinish(finish) };
  return {
    /** Chat streams open with the assistant role. */
    first: () => (kind === "chat" ? { ...head, choices: [choice(undefined, null, true)] } : undefined),
    delta: (text: string) => ({ ...head, choices: [choice(text, null)] }),
    finish: (reason: FinishReason) => ({ ...head, choices: [choice(undefined, reason)] }),
    usage: (promptTokens: number, completionTokens: number) => ({
      ...head,
      choices: [],
      usage: usage(promptTokens, completionTokens),
    }),
  };
}

/** One Server-Sent Event carrying JSON (OpenAI's streams have no event names or ids). */
export function sseData(body: unknown): string {
  return `data: ${JSON.stringify(body)}\n\n`;
}

export const SSE_DONE = "data: [DONE]\n\n";

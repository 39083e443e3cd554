// The pure parts of the generative path: OpenAI bodies into generation requests, the token bound
// the gateway reserves, the completion budget the worker allows, and the OpenAI documents.
import { describe, expect, it } from "vitest";
import { type InferenceTask, GENERATION_PARAMETER } from "../../runtime/shared/contracts/index.js";
import { ApiError } from "../../runtime/gateway/errors.js";
import { openAiError } from "../../runtime/gateway/openai/openai-errors.js";
import {
  parseChatRequest,
  parseCompletionRequest,
  promptTokenBound,
  TEMPLATE_TOKENS,
  TOKENS_PER_MESSAGE,
} from "../../runtime/gateway/openai/openai-request.js";
import { chatCompletion, chunkMaker } from "../../runtime/gateway/openai/openai-views.js";
import { chatPrompt } from "../../runtime/worker/engines/llama/chat-prompt.js";
import { completionBudget, generationRequestOf } from "../../runtime/worker/engines/llama/generation-task.js";
import { StepError } from "../../runtime/worker/step-error.js";

const task = (reservedTokens: number, generation: unknown): InferenceTask => ({
  requestId: "r",
  tenant: "t",
  target: { kind: "model", name: "m" },
  route: [{ step: "m", model: "m" }],
  inputs: [],
  parameters: { [GENERATION_PARAMETER]: generation },
  reservedTokens,
  inputTokens: 0,
  outputTokens: 0,
  submittedAt: 0,
  steps: [],
});

describe("OpenAI request parsing", () => {
  it("reads a chat body: roles (developer as system), text parts, stop, seed, stream options", () => {
    const r = parseChatRequest({
      model: "smollm2",
      messages: [
        { role: "developer", content: "Be brief." },
        {
          role: "user",
          content: [
            { type: "text", text: "Hé " },
            { type: "text", text: "there" },
          ],
        },
      ],
      max_tokens: 10,
      temperature: 0,
      seed: 3,
      stop: "\n",
      stream: true,
      stream_options: { include_usage: true },
      n: 1,
      user: "u-1",
    });
    expect(r.generation).toEqual({
      kind: "chat",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hé there" },
      ],
      maxTokens: 10,
      temperature: 0,
      seed: 3,
      stop: ["\n"],
    });
    expect(r).toMatchObject({ model: "smollm2", stream: true, includeUsage: true, messages: 2 });
    // UTF-8 bytes of contents and roles: "Be brief." 9 + "system" 6 + "Hé there" 9 + "user" 4.
    expect(r.promptBytes).toBe(28);
    expect(promptTokenBound(r)).toBe(28 + TEMPLATE_TOKENS + 2 * TOKENS_PER_MESSAGE + 1);
  });

  it("reads a completion body; max_completion_tokens wins over max_tokens", () => {
    const r = parseCompletionRequest({
      model: "m",
      prompt: ["Once"],
      max_tokens: 5,
      max_completion_tokens: 7,
    });
    expect(r.generation).toEqual({ kind: "completion", prompt: "Once", maxTokens: 7, stop: [] });
    expect(promptTokenBound(r)).toBe(5);
  });

  it.each([
    ["n > 1", { n: 2 }],
    ["an unknown role", { messages: [{ role: "tool", content: "x" }] }],
    ["no messages", { messages: [] }],
    ["temperature above 2", { temperature: 3 }],
    ["five stop sequences", { stop: ["a", "b", "c", "d", "e"] }],
    ["max_tokens 0", { max_tokens: 0 }],
  ])("refuses %s with 400 invalid_request", (_name, extra) => {
    const body = { model: "m", messages: [{ role: "user", content: "hi" }], ...extra };
    expect(() => parseChatRequest(body)).toThrow(ApiError);
    const error = openAiError(captured(() => parseChatRequest(body)));
    expect(error.status).toBe(400);
    expect(error.body.error).toMatchObject({
      type: "invalid_request_error",
      code: "invalid_request",
      param: null,
    });
  });
});

describe("the worker's side", () => {
  it("never lets the completion exceed what the reservation leaves after the prompt", () => {
    const request = generationRequestOf(task(100, { kind: "completion", prompt: "x", maxTokens: 80 }));
    expect(completionBudget(task(100, {}), request, 10)).toBe(80);
    expect(completionBudget(task(100, {}), request, 30)).toBe(70);
    expect(() => completionBudget(task(100, {}), request, 100)).toThrow(StepError);
  });

  it("refuses a task without a valid generation request as invalid input", () => {
    const error = captured(() => generationRequestOf(task(10, { kind: "chat", maxTokens: 5 })));
    expect(error).toBeInstanceOf(StepError);
    expect((error as StepError).code).toBe("invalid_input");
  });

  it("renders messages with a ChatML template and the generation prompt", () => {
    const template =
      "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n'}}{% endfor %}" +
      "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    expect(chatPrompt(template).render([{ role: "user", content: "Hi" }])).toBe(
      "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    );
    expect(() => chatPrompt(undefined)).toThrow(/no chat template/);
  });
});

describe("OpenAI documents", () => {
  it("reports usage and finish reasons as OpenAI does (cancelled reads as stop)", () => {
    const a = {
      id: "1",
      model: "m",
      created: 5,
      text: "hi",
      finishReason: "cancelled" as const,
      promptTokens: 3,
      completionTokens: 2,
    };
    const doc = chatCompletion(a);
    expect(doc.choices[0]!.finish_reason).toBe("stop");
    expect(doc.usage).toEqual({ prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 });
    const chunks = chunkMaker("chat", "1", "m", 5);
    expect(chunks.first()!.choices[0]!.delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.finish("length").choices[0]!.finish_reason).toBe("length");
    expect(chunks.usage(3, 2)).toMatchObject({ choices: [], usage: { total_tokens: 5 } });
    expect(chunkMaker("completion", "1", "m", 5).first()).toBeUndefined();
  });
});

function captured(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

/**
 * Parsing of OpenAI chat-completion and completion bodies into a GenerationRequest, and the token
 * bound the gateway reserves for it; pure. Refusals are ApiErrors (shown in OpenAI's error shape).
 */
import { z } from "zod";
import type { GenerationRequestInput } from "../../shared/contracts/index.js";
import { ApiError } from "../errors.js";

const MAX_STOP = 4;

const common = {
  model: z.string().min(1).max(253),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1)
    .nullish(),
  stop: z.union([z.string().min(1), z.array(z.string().min(1)).max(MAX_STOP)]).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).nullish(),
  n: z.literal(1, { message: "only n = 1 is supported" }).nullish(),
  user: z.string().max(256).nullish(),
};

const content = z.union([
  z.string(),
  // The array form with text parts only; images and audio are not for these models.
  z
    .array(z.object({ type: z.literal("text"), text: z.string() }))
    .transform((parts) => parts.map((p) => p.text).join("")),
]);

const chatSchema = z.object({
  ...common,
  messages: z
    .array(
      z.object({
        role: z.enum(["system", "developer", "user", "assistant"]),
        content,
        name: z.string().max(64).optional(),
      }),
    )
    .min(1)
    .max(256),
});

const completionSchema = z.object({
  ...common,
  prompt: z
    .union([z.string(), z.array(z.string()).length(1)])
    .transform((p) => (Array.isArray(p) ? p[0]! : p)),
  echo: z.literal(false).nullish(),
  suffix: z.null().optional(),
});

/** A validated OpenAI request. */
export interface OpenAiRequest {
  model: string;
  generation: Omit<GenerationRequestInput, "maxTokens" | "replyTo"> & { maxTokens?: number };
  stream: boolean;
  includeUsage: boolean;
  /** UTF-8 bytes of every text the prompt is made of (contents and roles). */
  promptBytes: number;
  messages: number;
}

/** Parses a /v1/chat/completions body. */
export function parseChatRequest(body: unknown): OpenAiRequest {
  const r = parse(chatSchema, body);
  const messages = r.messages.map((m) => ({
    // OpenAI's newer name for the system role; chat templates know `system`.
    role: m.role === "developer" ? ("system" as const) : m.role,
    content: m.content,
  }));
  const promptBytes = messages.reduce((n, m) => n + bytes(m.content) + bytes(m.role), 0);
  return {
    ...base(r),
    generation: { ...options(r), kind: "chat", messages },
    promptBytes,
    messages: messages.length,
  };
}

/** Parses a /v1/completions body. */
export function parseCompletionRequest(body: unknown): OpenAiRequest {
  const r = parse(completionSchema, body);
  return {
    ...base(r),
    generation: { ...options(r), kind: "completion", prompt: r.prompt },
    promptBytes: bytes(r.prompt),
    messages: 0,
  };
}

/**
 * Tokens the chat template may add around the messages (role markers, a default system prompt);
 * the worker never lets a request charge more than was reserved, whatever the template does.
 */
export const TEMPLATE_TOKENS = 64;
export const TOKENS_PER_MESSAGE = 8;

/**
 * Upper bound of a prompt's tokens: byte-level BPE tokenizers (as GGUF chat models use) never make
 * more tokens than UTF-8 bytes, plus what the template adds and a BOS token.
 */
export function promptTokenBound(request: OpenAiRequest): number {
  const template =
    request.generation.kind === "chat" ? TEMPLATE_TOKENS + TOKENS_PER_MESSAGE * request.messages : 0;
  return request.promptBytes + template + 1;
}

function parse<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw new ApiError("invalid_request", "the body must be a JSON object");
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .slice(0, 3)
      .map((i) => `${i.path.length ? i.path.join(".") : "body"}: ${i.message}`);
    throw new ApiError("invalid_request", problems.join("; "));
  }
  return parsed.data;
}

type Common = z.infer<z.ZodObject<typeof common>>;

function base(r: Common) {
  return {
    model: r.model,
    stream: r.stream ?? false,
    includeUsage: r.stream_options?.include_usage ?? false,
  };
}

function options(r: Common) {
  const maxTokens = r.max_completion_tokens ?? r.max_tokens ?? undefined;
  const stop = r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop;
  return {
    ...(maxTokens !== undefined ? { maxTokens } : {}),
    ...(r.temperature != null ? { temperature: r.temperature } : {}),
    ...(r.top_p != null ? { topP: r.top_p } : {}),
    ...(r.seed != null ? { seed: r.seed } : {}),
    stop,
  };
}

function bytes(text: string): number {
  return Buffer.byteLength(text, "utf8");
}

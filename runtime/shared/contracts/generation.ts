/**
 * The wire contract of generative (gguf) models: what a text-generation task carries in its
 * `parameters`, the stream messages a worker sends straight to the answering gateway while it
 * generates, and the names of the queues and exchanges that carry them. Written once, used by the
 * gateway's OpenAI routes and the worker's llama engine.
 */
import { z } from "zod";

/** Key of InferenceTask.parameters that holds the {@link GenerationRequest}. */
export const GENERATION_PARAMETER = "generation";

/** Output tensors of a generation (BYTES, shape [1]), as the request record stores them. */
export const GENERATION_OUTPUTS = { text: "text", finishReason: "finish_reason" } as const;

/**
 * Why a generation ended: `stop` (end of turn or a stop sequence), `length` (max_tokens), or
 * `cancelled` (the client went away; the tokens generated so far are charged).
 */
export const FINISH_REASONS = ["stop", "length", "cancelled"] as const;
export type FinishReason = (typeof FINISH_REASONS)[number];

export const chatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});

export const generationRequestSchema = z
  .object({
    /** `chat`: `messages` through the model's own chat template; `completion`: `prompt` as is. */
    kind: z.enum(["chat", "completion"]),
    messages: z.array(chatMessageSchema).min(1).optional(),
    prompt: z.string().optional(),
    maxTokens: z.number().int().min(1),
    temperature: z.number().min(0).max(2).default(1),
    topP: z.number().gt(0).max(1).default(1),
    seed: z
      .number()
      .int()
      .min(0)
      .max(2 ** 32 - 1)
      .optional(),
    stop: z.array(z.string().min(1)).max(4).default([]),
    /** The gateway's own non-durable queue that receives {@link StreamMessage}s, when it streams. */
    replyTo: z.string().min(1).optional(),
  })
  .refine((r) => (r.kind === "chat" ? r.messages !== undefined : r.prompt !== undefined), {
    message: "chat needs messages, completion needs prompt",
  });

export type ChatMessage = z.infer<typeof chatMessageSchema>;
export type GenerationRequest = z.infer<typeof generationRequestSchema>;
export type GenerationRequestInput = z.input<typeof generationRequestSchema>;

/**
 * Sent by the worker to `replyTo` while it generates (non-persistent: a lost one only costs the
 * live view; the durable result and the record hold the whole text). `seq` orders deltas; `done`
 * follows the durable result's publish confirm.
 */
export type StreamMessage =
  | { type: "delta"; requestId: string; seq: number; text: string }
  | {
      type: "done";
      requestId: string;
      seq: number;
      finishReason: FinishReason;
      promptTokens: number;
      completionTokens: number;
    };

/**
 * Published to the cancel exchange. `by`: `client` (a streaming client went away: the generation
 * ends `succeeded` with finish reason `cancelled`) or `tenant` (DELETE /v1/requests/{id}: the request
 * ends `cancelled`); absent means `client`.
 */
export interface CancelMessage {
  requestId: string;
  by?: "client" | "tenant";
}

/** Queue and exchange names of generation, under one installation prefix. */
export function generationNames(prefix: string) {
  const base = `turnpike.${prefix}`;
  return {
    /** Fanout exchange: the gateway publishes `{requestId}` when a client goes away mid-stream. */
    cancelExchange: `${base}.cancel`,
    /** One gateway process's own exclusive, auto-deleted queue of stream messages. */
    gatewayQueue: (gatewayId: string) => `${base}.gateway.${gatewayId}`,
  };
}

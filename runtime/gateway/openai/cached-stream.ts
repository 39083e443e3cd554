/** A stream (`stream: true`) answered from the result cache: the same chunks, all at once. */
import type { FastifyReply } from "fastify";
import { chunkMaker, SSE_DONE, sseData, type Answer } from "./openai-views.js";

/** Sends the cached text as one delta between the usual first and finish chunks, then [DONE]. */
export function sendCachedStream(
  reply: FastifyReply,
  answer: Answer,
  kind: "chat" | "completion",
  includeUsage: boolean,
) {
  const chunks = chunkMaker(kind, answer.id, answer.model, answer.created);
  const first = chunks.first();
  const events = [
    ...(first ? [first] : []),
    ...(answer.text ? [chunks.delta(answer.text)] : []),
    chunks.finish(answer.finishReason),
    ...(includeUsage ? [chunks.usage(answer.promptTokens, answer.completionTokens)] : []),
  ];
  return reply
    .code(200)
    .header("content-type", "text/event-stream; charset=utf-8")
    .header("cache-control", "no-cache")
    .send(events.map(sseData).join("") + SSE_DONE);
}

/**
 * An OpenAI stream (`stream: true`): Server-Sent Events of completion chunks ending with
 * `data: [DONE]`. Text comes from the worker as it is generated (StreamHub); the durable way is the
 * fallback: if the completion notice arrives before the worker's `done` (a lost stream message, a
 * reconnect), the rest of the text and the exact usage come from the record. A client that goes
 * away mid-stream makes the workers stop generating; it is charged only what was generated.
 */
import type { FastifyReply } from "fastify";
import type { StreamMessage } from "../../shared/contracts/index.js";
import type { CompletionWaiter } from "../completions.js";
import type { GatewayContext } from "../context.js";
import { isFinal } from "../views.js";
import { openAiError } from "./openai-errors.js";
import { answerOf } from "./openai-answer.js";
import { chunkMaker, SSE_DONE, sseData } from "./openai-views.js";
import type { StreamHub } from "./stream-hub.js";

/** What a prepared stream needs to answer. */
export interface StreamRun {
  ctx: GatewayContext;
  reply: FastifyReply;
  requestId: string;
  tenant: string;
  model: string;
  kind: "chat" | "completion";
  created: number;
  waiter: CompletionWaiter;
  includeUsage: boolean;
}

/** A stream listening before its request is published; `run` answers it. */
export interface PreparedStream {
  run(options: StreamRun): Promise<void>;
  /** Stops listening to the worker (the answer then comes from the record). */
  detach(): void;
  /** Forgets the stream (the request was refused). */
  cancel(): void;
}

export const streamAnswer = {
  prepare(hub: StreamHub, requestId: string): PreparedStream {
    const buffered: StreamMessage[] = [];
    let deliver: (message: StreamMessage) => void = (m) => buffered.push(m);
    const unlisten = hub.listen(requestId, (m) => deliver(m));
    return {
      detach: unlisten,
      cancel: unlisten,
      run: (o) =>
        new Promise<void>((resolve) => {
          const { ctx, reply, requestId: id } = o;
          const chunks = chunkMaker(o.kind, id, o.model, o.created);
          const raw = reply.raw;
          let sent = "";
          let finished = false;
          reply.hijack();
          raw.writeHead(200, {
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
            connection: "keep-alive",
            "x-request-id": id,
          });
          const first = chunks.first();
          if (first) raw.write(sseData(first));
          const end = () => {
            if (finished) return;
            finished = true;
            unlisten();
            o.waiter.cancel();
            ctx.streams.delete(end);
            raw.end(() => resolve());
          };
          const finish = (
            reason: Parameters<typeof chunks.finish>[0],
            prompt: number,
            completion: number,
          ) => {
            if (finished) return;
            raw.write(sseData(chunks.finish(reason)));
            if (o.includeUsage) raw.write(sseData(chunks.usage(prompt, completion)));
            raw.write(SSE_DONE);
            end();
          };
          deliver = (m) => {
            if (finished) return;
            if (m.type === "delta") {
              sent += m.text;
              raw.write(sseData(chunks.delta(m.text)));
            } else finish(m.finishReason, m.promptTokens, m.completionTokens);
          };
          buffered.splice(0).forEach((m) => deliver(m));
          raw.on("close", () => {
            if (finished) return;
            // The client went away before the end: stop the generation, charge what was made.
            hub.cancel(id);
            finished = true;
            unlisten();
            o.waiter.cancel();
            ctx.streams.delete(end);
            resolve();
          });
          ctx.streams.add(end);
          void o.waiter.notice.then(async () => {
            if (finished) return;
            try {
              const state = await ctx.states.read(id, o.tenant);
              if (finished || !state || !isFinal(state)) return;
              const answer = answerOf(state, o.model, o.created);
              const rest = answer.text.startsWith(sent) ? answer.text.slice(sent.length) : "";
              if (rest) raw.write(sseData(chunks.delta(rest)));
              finish(answer.finishReason, answer.promptTokens, answer.completionTokens);
            } catch (error) {
              if (finished) return;
              raw.write(sseData(openAiError(error).body));
              raw.write(SSE_DONE);
              end();
            }
          });
        }),
    };
  },
};

/**
 * The OpenAI-compatible API for generative (gguf) models: POST /v1/chat/completions,
 * POST /v1/completions and GET /v1/models, with OpenAI's request, response, stream and error
 * shapes. Requests take the same way as every other (reserve, enqueue, worker, collector); the text
 * of a stream comes straight from the worker through this gateway's own queue (stream-hub.ts).
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  GENERATION_PARAMETER,
  generationRequestSchema,
  type GenerationRequest,
  type ModelConfig,
} from "../../shared/contracts/index.js";
import { tenantConfig } from "../auth.js";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { parsePrefer } from "../routes/infer.js";
import { resolveTarget } from "../routes/models.js";
import { checkIdempotencyKey } from "../submit.js";
import {
  cachedState,
  generationCacheInput,
  hitTokens,
  isDeterministic,
  lookUp,
  submissionCache,
} from "../result-cache.js";
import { chargedTokens } from "../../shared/db/charged-tokens.js";
import { sendCachedStream } from "./cached-stream.js";
import { isFinal } from "../views.js";
import { openAiErrorHandler } from "./openai-errors.js";
import {
  parseChatRequest,
  parseCompletionRequest,
  promptTokenBound,
  type OpenAiRequest,
} from "./openai-request.js";
import { answerOf, waitForFinal } from "./openai-answer.js";
import { chatCompletion, textCompletion } from "./openai-views.js";
import { StreamHub } from "./stream-hub.js";
import { streamAnswer } from "./stream-answer.js";

/** Registers the routes in their own scope (OpenAI's error shape applies to them only). */
export async function openAiRoutes(app: FastifyInstance, ctx: GatewayContext): Promise<void> {
  const hub = new StreamHub(ctx.env.TURNPIKE_AMQP_URL, ctx.prefix, ctx.log);
  await hub.start();
  app.addHook("onClose", () => hub.close());
  app.setErrorHandler(openAiErrorHandler(ctx.log));

  app.get("/v1/models", async (request) => {
    const config = ctx.config();
    const tenant = tenantConfig(config, request.tenant);
    const allowed = (name: string) => tenant.models.length === 0 || tenant.models.includes(name);
    const data = [...config.models.map((m) => m.name), ...config.pipelines.map((p) => p.name)]
      .filter(allowed)
      .map((id) => ({ id, object: "model", created: 0, owned_by: ctx.prefix }));
    return { object: "list", data };
  });
  app.post("/v1/chat/completions", (request, reply) =>
    complete(ctx, hub, request, reply, parseChatRequest(request.body)),
  );
  app.post("/v1/completions", (request, reply) =>
    complete(ctx, hub, request, reply, parseCompletionRequest(request.body)),
  );
}

/** The generative model a request names, if the tenant may call it. */
function generativeModel(ctx: GatewayContext, tenant: string, name: string): ModelConfig {
  const config = ctx.config();
  resolveTarget(config, tenant, name);
  const model = config.models.find((m) => m.name === name);
  if (!model || model.format !== "gguf") {
    throw new ApiError(
      "target_not_runnable",
      `${name} is not a generative (gguf) model; call it with POST /v2/models/${name}/infer`,
    );
  }
  return model;
}

async function complete(
  ctx: GatewayContext,
  hub: StreamHub,
  request: FastifyRequest,
  reply: FastifyReply,
  parsed: OpenAiRequest,
) {
  const tenant = request.tenant;
  const model = generativeModel(ctx, tenant, parsed.model);
  const limit = model.tokens.maxOutputTokens;
  const maxTokens = parsed.generation.maxTokens ?? limit;
  if (maxTokens > limit) {
    throw new ApiError(
      "invalid_parameter",
      `max_tokens is ${maxTokens}; model ${model.name} allows at most ${limit}`,
    );
  }
  const prefer = parsePrefer(request.headers.prefer);
  const idempotencyKey = checkIdempotencyKey(request.headers["idempotency-key"]);
  const live = parsed.stream && !prefer.respondAsync;
  const generation: GenerationRequest = generationRequestSchema.parse({
    ...parsed.generation,
    maxTokens,
    ...(live && hub.replyTo ? { replyTo: hub.replyTo } : {}),
  });
  const promptBound = promptTokenBound(parsed);
  // Temperature 0 with a fixed seed only: any other generation may differ and is never cached.
  const cache = isDeterministic(model, generation)
    ? await lookUp(ctx, model, tenant, generationCacheInput(generation))
    : undefined;
  const hit = cache?.hit ? { ...cache, hit: cache.hit } : undefined;
  const requestId = randomUUID();
  const created = Math.floor(Date.now() / 1000);
  // Listen before publishing, so nothing the worker sends can slip past.
  const waiter = prefer.respondAsync ? undefined : ctx.completions.wait(requestId);
  const stream = live ? streamAnswer.prepare(hub, requestId) : undefined;
  let outcome;
  try {
    outcome = await ctx.submitter.submit({
      requestId,
      tenant,
      target: { kind: "model", name: model.name },
      route: [{ step: model.name, model: model.name }],
      queueModel: model.name,
      inputs: [],
      parameters: { [GENERATION_PARAMETER]: generation },
      inputTokens: hit ? 0 : promptBound,
      reservedTokens: hit ? hitTokens(hit) : promptBound + maxTokens,
      submittedAt: Date.now(),
      idempotencyKey,
      ...submissionCache(cache),
    });
  } catch (error) {
    waiter?.cancel();
    stream?.cancel();
    throw error;
  }
  reply.header("x-request-id", outcome.requestId);
  ctx.metrics.requests.inc({ target: model.name, code: prefer.respondAsync ? "202" : "200" });
  if (!waiter) {
    reply.header("preference-applied", "respond-async");
    const location = `/v1/requests/${outcome.requestId}`;
    return reply
      .code(202)
      .header("location", location)
      .send({ id: outcome.requestId, status: "queued", location });
  }
  const id = outcome.requestId;
  const kind = generation.kind;
  if (outcome.cached) {
    // A hit: answered now from the cached text; the collector records the same result.
    waiter.cancel();
    stream?.cancel();
    const state = cachedState(outcome.cached, chargedTokens(outcome.cached));
    const answer = answerOf(state, model.name, created);
    if (live) return sendCachedStream(reply, answer, kind, parsed.includeUsage);
    return kind === "chat" ? chatCompletion(answer) : textCompletion(answer);
  }
  if (stream) {
    // A reused Idempotency-Key answers from the first request's record: its worker relays elsewhere.
    if (outcome.reused) stream.detach();
    return stream.run({
      ctx,
      reply,
      requestId: id,
      tenant,
      model: model.name,
      kind,
      created,
      waiter,
      includeUsage: parsed.includeUsage,
    });
  }
  const state = await waitForFinal(ctx, id, tenant, waiter.notice, () => waiter.cancel());
  if (!state || !isFinal(state)) {
    const location = `/v1/requests/${id}`;
    return reply.code(202).header("location", location).send({ id, status: "queued", location });
  }
  const answer = answerOf(state, model.name, created);
  return kind === "chat" ? chatCompletion(answer) : textCompletion(answer);
}

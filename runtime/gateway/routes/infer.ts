/**
 * POST /v2/models/{name}[/versions/{version}]/infer, for models and pipelines alike. Synchronous by
 * default: waits for the result up to TURNPIKE_SYNC_TIMEOUT_MS (or `parameters.timeout` ms, or
 * `Prefer: wait=<s>`); past it, 504 `sync_timeout` with the request id to poll (the request goes
 * on). `Prefer: respond-async` answers 202 with the id at once. Bodies are OIP JSON, or a JSON
 * header with binary tensor data after it (oip/binary-tensors.ts), and so are answers.
 */
import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyReply } from "fastify";
import {
  type CompletionNotice,
  type InferenceResult,
  type RouteStep,
  entryModel,
  type ModelConfig,
  type RuntimeConfig,
} from "../../shared/contracts/index.js";
import { taskSignature, type TaskSignature } from "../../shared/models/task-signature.js";
import type { GatewayContext } from "../context.js";
import { ApiError, ERROR_STATUS } from "../errors.js";
import { parseInferRequest } from "../infer-request.js";
import { anyInputs, modelInputCheck, processorInputCheck } from "../input-contracts.js";
import { checkIdempotencyKey } from "../submit.js";
import { ocrLineTensors } from "../ocr-line-tensors.js";
import { cachedState, hitTokens, lookUp, oipCacheInput, submissionCache } from "../result-cache.js";
import { chargedTokens } from "../../shared/db/charged-tokens.js";
import { estimateTokens, routeModels } from "../tokens.js";
import {
  cancelledError,
  directState,
  isFinal,
  toOipResponse,
  type FinalState,
  type RequestState,
} from "../views.js";
import type { CompletionWaiter } from "../completions.js";
import type { DirectResult } from "../openai/stream-hub.js";
import {
  binaryOutputs,
  BinaryInferBody,
  encodeBinaryResponse,
  HEADER_LENGTH_HEADER,
  inlineBinaryInputs,
  withoutBinaryParameters,
} from "../oip/binary-tensors.js";
import { versionOf } from "../oip/model-metadata.js";
import { outcomeOf } from "../oip/model-stats.js";
import { checkRunnable, resolveTarget, versionedPaths } from "./models.js";
import { markStage, now, tracing } from "../../shared/stage-trace.js";

/** What an RFC 7240 Prefer header asks for. */
export interface Preference {
  respondAsync: boolean;
  waitSeconds?: number;
}

/** Parses `Prefer: respond-async, wait=10`. */
export function parsePrefer(header: string | string[] | undefined): Preference {
  const text = (Array.isArray(header) ? header.join(",") : (header ?? "")).toLowerCase();
  const tokens = text.split(/[,;]/).map((t) => t.trim());
  const wait = tokens.find((t) => /^wait\s*=\s*\d+$/.test(t));
  return {
    respondAsync: tokens.includes("respond-async"),
    waitSeconds: wait ? Number(wait.split("=")[1]) : undefined,
  };
}

/** Each model's signature, built once per config object (a reloaded config brings new objects). */
const signatures = new WeakMap<ModelConfig, TaskSignature>();

function signatureOf(model: ModelConfig): TaskSignature {
  let signature = signatures.get(model);
  if (!signature) signatures.set(model, (signature = taskSignature(model)));
  return signature;
}

/** Registers the infer routes. */
export function inferRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  for (const path of versionedPaths("/infer")) inferRoute(app, ctx, path);
}

function inferRoute(app: FastifyInstance, ctx: GatewayContext, path: string): void {
  app.post<{ Params: { name: string; version?: string } }>(
    path,
    {
      // A small body's rate limits may go to Redis with its reservation (request-limits.ts).
      config: { deferLimits: true },
      onResponse: async (request, reply) => {
        const known =
          ctx.config().models.some((m) => m.name === request.params.name) ||
          ctx.config().pipelines.some((p) => p.name === request.params.name);
        const target = known ? request.params.name : "unknown";
        const seconds = reply.elapsedTime / 1000;
        if (tracing) markStage(String(reply.getHeader("x-request-id") ?? ""), "g.done");
        ctx.metrics.requests.inc({ target, code: String(reply.statusCode) });
        ctx.metrics.requestDuration.observe(
          { target, mode: reply.statusCode === 202 ? "async" : "sync" },
          seconds,
        );
        const outcome = outcomeOf(
          reply.statusCode,
          (code) => code === 202 || code === ERROR_STATUS.sync_timeout,
        );
        ctx.metrics.inferOutcomes.observe({ target, outcome }, seconds);
      },
    },
    async (request, reply) => {
      const enteredAt = tracing ? now() : 0;
      const config = ctx.config();
      const { name, version } = request.params;
      const tenant = request.tenant;
      const resolved = resolveTarget(config, tenant, name, version);
      checkRunnable(config, name);
      const route: RouteStep[] = resolved.route;
      const models = routeModels(config, route);
      if (models.some((m) => m.format === "gguf")) {
        throw new ApiError(
          "target_not_runnable",
          `${name} generates text; call it with POST /v1/chat/completions or /v1/completions`,
        );
      }
      const first = route[0]!;
      const queueModel = entryModel(route);
      if (!queueModel) throw new ApiError("target_not_runnable", `pipeline ${name} has no model step to run`);

      // Validation happens before anything is reserved or enqueued.
      const check = first.model
        ? modelInputCheck(signatureOf(models[0]!))
        : first.processor
          ? processorInputCheck(first.processor)
          : anyInputs;
      const json = request.body instanceof BinaryInferBody ? inlineBinaryInputs(request.body) : request.body;
      const parsed = {
        ...parseInferRequest(withoutBinaryParameters(json), check),
        binary: binaryOutputs(json),
        version: versionOf(config, name),
      };
      checkOutputs(config, route.at(-1)?.model, parsed.outputs);
      const idempotencyKey = checkIdempotencyKey(request.headers["idempotency-key"]);
      const prefer = parsePrefer(request.headers.prefer);
      const timeoutMs = Math.min(
        parsed.timeoutMs ??
          (prefer.waitSeconds !== undefined ? prefer.waitSeconds * 1000 : ctx.env.TURNPIKE_SYNC_TIMEOUT_MS),
        ctx.env.TURNPIKE_MAX_SYNC_TIMEOUT_MS,
      );
      const sync = !prefer.respondAsync && timeoutMs > 0;
      const characters = parsed.inputs.reduce((n, i) => n + i.characters, 0);
      const tokens = estimateTokens(models, characters);
      const wireInputs = parsed.inputs.map((i) => i.wire);
      // Only single models cache (every ONNX model is deterministic); a hit skips the model's queue.
      // The key's input (base64 of every tensor) is built only for a model with the cache on.
      const cacheOn = resolved.kind === "model" && models[0]!.cache;
      if (cacheOn) await request.deferredLimits?.check();
      const cache = cacheOn
        ? await lookUp(ctx, models[0]!, tenant, oipCacheInput(wireInputs, parsed.parameters))
        : undefined;
      const hit = cache?.hit ? { ...cache, hit: cache.hit } : undefined;

      // After the cache lookup, so the cache key stays the PNG's whichever side makes the tensor.
      const taskInputs =
        first.model && !hit
          ? ocrLineTensors(ctx.env.TURNPIKE_OCR_PREPROCESS, models[0], wireInputs)
          : wireInputs;
      const requestId = randomUUID();
      // Wait before publishing, so a result that arrives at once cannot slip past. The result comes
      // straight from the worker to this gateway's queue; the collector's notice after the commit
      // is the fallback (the queue was down, or is being re-created after a broker hiccup).
      const replyTo = sync ? ctx.replies.replyTo : undefined;
      let direct = replyTo ? ctx.replies.awaitResult(requestId) : undefined;
      let waiter = sync ? ctx.completions.wait(requestId) : undefined;
      const submittedAt = Date.now();
      if (tracing) {
        markStage(requestId, "g.arrived", enteredAt - reply.elapsedTime);
        markStage(requestId, "g.handler", enteredAt);
        markStage(requestId, "g.submit");
      }
      let outcome;
      try {
        outcome = await ctx.submitter.submit({
          requestId,
          tenant,
          target: { kind: resolved.kind, name },
          route,
          queueModel,
          inputs: taskInputs,
          parameters: parsed.parameters,
          inputTokens: hit ? 0 : tokens.inputTokens,
          reservedTokens: hit ? hitTokens(hit) : tokens.reservedTokens,
          submittedAt,
          idempotencyKey,
          ...submissionCache(cache),
          ...(replyTo ? { replyTo } : {}),
          ...(sync ? { deferMark: true } : {}),
          ...(request.deferredLimits ? { limits: request.deferredLimits } : {}),
        });
      } catch (error) {
        waiter?.cancel();
        direct?.cancel();
        throw error;
      }
      markStage(outcome.requestId, "g.confirmed");
      reply.header("x-request-id", outcome.requestId);
      if (outcome.cached) {
        // A hit: answered now from the cached outputs; the collector records the same result.
        waiter?.cancel();
        if (!sync) {
          if (prefer.respondAsync) reply.header("preference-applied", "respond-async");
          return accepted(reply, outcome.requestId, undefined);
        }
        return answerFinal(reply, cachedState(outcome.cached, chargedTokens(outcome.cached)), parsed);
      }
      if (outcome.reused && waiter) {
        // The first request's result goes to the gateway that submitted it: wait for its record.
        direct?.cancel();
        direct = undefined;
        waiter.cancel();
        waiter = ctx.completions.wait(outcome.requestId);
      }
      if (!waiter) {
        if (prefer.respondAsync) reply.header("preference-applied", "respond-async");
        const state = outcome.reused ? await ctx.states.read(outcome.requestId, tenant) : undefined;
        if (state && isFinal(state)) return answerFinal(reply, state, parsed);
        return accepted(reply, outcome.requestId, state);
      }
      ctx.metrics.inFlight.inc({ target: name });
      try {
        const state = await waitForFinal(
          ctx,
          outcome.requestId,
          tenant,
          { waiter, direct },
          timeoutMs,
          outcome.reused,
        );
        if (state && isFinal(state)) return answerFinal(reply, state, parsed);
        // The caller learns the id only now: mark the request queued for GET /v1/requests/{id}.
        if (!state) {
          const target = { kind: resolved.kind, name };
          await ctx.states
            .markQueued(outcome.requestId, tenant, target, submittedAt, true)
            .catch(() => undefined);
        }
        throw syncTimeout(outcome.requestId, timeoutMs, ctx.stopping.aborted);
      } finally {
        ctx.metrics.inFlight.dec({ target: name });
      }
    },
  );
}

/** Refuses requested outputs the last model does not declare (when it declares any). */
function checkOutputs(
  config: RuntimeConfig,
  lastModel: string | undefined,
  wanted: string[] | undefined,
): void {
  if (!wanted || !lastModel) return;
  const model = config.models.find((m) => m.name === lastModel);
  const declared = model ? signatureOf(model).outputs : undefined;
  if (!declared) return;
  const unknown = wanted.filter((w) => !declared.some((d) => d.name === w));
  if (unknown.length > 0) {
    throw new ApiError(
      "unknown_output",
      `unknown output(s) ${unknown.join(", ")}; ${lastModel} has ${declared.map((d) => d.name).join(", ")}`,
    );
  }
}

/**
 * Waits for the completion notice or the deadline, then reads the state once. A reused request
 * (same Idempotency-Key) may already be final, so it is read first.
 */
async function waitForFinal(
  ctx: GatewayContext,
  requestId: string,
  tenant: string,
  { waiter, direct }: { waiter: CompletionWaiter; direct?: DirectResult },
  timeoutMs: number,
  readFirst: boolean,
): Promise<RequestState | undefined> {
  let timer: NodeJS.Timeout | undefined;
  let onStop: (() => void) | undefined;
  try {
    if (readFirst) {
      const state = await ctx.states.read(requestId, tenant);
      if (!state || isFinal(state)) return state;
    }
    // The deadline, or shutdown: the caller then gets 202 and reads the result later.
    const deadline = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
      onStop = () => resolve(undefined);
      if (ctx.stopping.aborted) onStop();
      else ctx.stopping.addEventListener("abort", onStop);
    });
    const first = await Promise.race<CompletionNotice | InferenceResult | undefined>([
      ...(direct ? [direct.result] : []),
      waiter.notice,
      deadline,
    ]);
    // Straight from the worker: answer now; the collector records and settles it after.
    if (first && "finishedAt" in first) return directState(first);
    // Read even on timeout: a notice lost while Redis reconnected must not hide a finished result.
    return await ctx.states.read(requestId, tenant);
  } finally {
    clearTimeout(timer);
    if (onStop) ctx.stopping.removeEventListener("abort", onStop);
    waiter.cancel();
    direct?.cancel();
  }
}

/** 200 with the OIP response (binary outputs after a JSON header when asked), or the worker's failure. */
function answerFinal(
  reply: FastifyReply,
  state: FinalState,
  parsed: { clientId?: string; outputs?: string[]; binary?: (name: string) => boolean; version?: string },
) {
  const record = state.record;
  markStage(record.id, "g.send");
  if (record.status === "succeeded") {
    const { outputs, ...rest } = toOipResponse(record, {
      clientId: parsed.clientId,
      outputs: parsed.outputs,
    });
    const response = { ...rest, ...(parsed.version ? { model_version: parsed.version } : {}), outputs };
    const binary = parsed.binary && encodeBinaryResponse(response, record.outputs ?? [], parsed.binary);
    if (!binary) return reply.code(200).send(response);
    return reply
      .code(200)
      .header(HEADER_LENGTH_HEADER, binary.headerLength)
      .type("application/octet-stream")
      .send(binary.body);
  }
  if (record.status === "cancelled") throw cancelledError(record.id);
  const code = record.error?.code ?? "unknown";
  const message = `${code}: ${record.error?.message ?? "the request failed"}`;
  // Worker codes starting with "invalid" blame the input; anything else is ours.
  throw new ApiError(/^invalid/.test(code) ? "inference_rejected" : "inference_failed", message);
}

/**
 * A synchronous caller's wait ran out (or the gateway is shutting down): 504 with the id to poll;
 * the request itself goes on, and its result stays readable at GET /v1/requests/{id}.
 */
function syncTimeout(requestId: string, timeoutMs: number, stopping: boolean): ApiError {
  const location = `/v1/requests/${requestId}`;
  const why = stopping
    ? "the gateway is shutting down before the result arrived"
    : `the result was not ready within ${timeoutMs} ms`;
  return new ApiError(
    "sync_timeout",
    `${why}; request ${requestId} goes on: poll GET ${location} (or send Prefer: respond-async for 202)`,
    { location },
    { details: { request_id: requestId, location } },
  );
}

/** 202 with the id and where to read the result. */
function accepted(reply: FastifyReply, requestId: string, state: RequestState | undefined) {
  const location = `/v1/requests/${requestId}`;
  const status = state?.kind === "record" ? state.record.status : (state?.pending.status ?? "queued");
  return reply.code(202).header("location", location).send({ id: requestId, status, location });
}

/** OIP v2 server and model metadata: GET /v2, /v2/models/{name}, /v2/models/{name}/ready. */
import type { FastifyInstance } from "fastify";
import { names, type RouteStep } from "../../shared/contracts/index.js";
import { pipelineGaps } from "../../shared/contracts/index.js";
import { taskSignature } from "../../shared/models/task-signature.js";
import { routeFor, type RuntimeConfig } from "../../shared/contracts/index.js";
import { checkAllowed } from "../auth.js";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { routeModels } from "../tokens.js";

type NameParams = { Params: { name: string } };

/** The route of a model or pipeline the tenant may call; 404 / 403 otherwise. */
export function resolveTarget(config: RuntimeConfig, tenant: string, name: string) {
  const resolved = routeFor(config, name);
  if (!resolved) throw new ApiError("model_not_found", `there is no model or pipeline named ${name}`);
  checkAllowed(config, tenant, name);
  return resolved;
}

/** Refuses a pipeline this runtime cannot run as configured (see pipelineGaps), before anything is reserved. */
export function checkRunnable(config: RuntimeConfig, name: string): void {
  const pipeline = config.pipelines.find((p) => p.name === name);
  const { blocking } = pipeline ? pipelineGaps(pipeline) : { blocking: [] };
  if (blocking.length > 0) {
    throw new ApiError(
      "target_not_runnable",
      `pipeline ${name} cannot run in this runtime: ${blocking.join("; ")}`,
    );
  }
}

/** Registers the metadata routes. */
export function modelRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/v2", async () => ({
    name: "turnpike",
    version: "v1alpha1",
    extensions: ["async", "server-sent-events", "idempotency-key"],
  }));

  app.get<NameParams>("/v2/models/:name", async (request) => {
    const config = ctx.config();
    const { name } = request.params;
    const resolved = resolveTarget(config, request.tenant, name);
    const route: RouteStep[] = resolved.route;
    const models = routeModels(config, route);
    // The API-level signature (shared with the worker): OCR takes PNG images, not only its raw tensor.
    const first = route[0]?.model && models[0] ? taskSignature(models[0]) : undefined;
    const last = route.at(-1)?.model && models.at(-1) ? taskSignature(models.at(-1)!) : undefined;
    const variants = first?.inputVariants ?? [];
    return {
      name,
      versions: [],
      platform: resolved.kind === "model" ? "onnxruntime_onnx" : "turnpike_pipeline",
      inputs: variants[0]?.tensors ?? [],
      outputs: last?.outputs ?? [],
      parameters: {
        kind: resolved.kind,
        steps: route.map((s) => s.model ?? `processor:${s.processor}`),
        ...(variants.length > 1 ? { input_variants: variants } : {}),
        ...(models[0] ? { task: models[0].task, tokens: models[0].tokens } : {}),
      },
    };
  });

  app.get<NameParams>("/v2/models/:name/ready", async (request) => {
    const config = ctx.config();
    const { name } = request.params;
    const resolved = resolveTarget(config, request.tenant, name);
    checkRunnable(config, name);
    // Ready means every model of the route has its queue: requests are accepted even while a
    // model is scaled to zero (the queue depth scales it up).
    const models = routeModels(config, resolved.route);
    const infos = await Promise.all(
      models.map((m) => ctx.publisher.queueInfo(names(ctx.prefix).modelQueue(m.name))),
    ).catch((cause: unknown) => {
      // RabbitMQ unreachable is an outage to retry through, like every other dependency failure.
      throw new ApiError(
        "service_unavailable",
        "cannot reach RabbitMQ to check the model's queue; retry",
        { "retry-after": 2 },
        { cause },
      );
    });
    const missing = models.filter((_, i) => !infos[i]!.exists).map((m) => m.name);
    if (models.length === 0 || missing.length > 0) {
      throw new ApiError(
        "model_not_ready",
        models.length === 0 ? `${name} runs no model` : `no queue yet for ${missing.join(", ")}`,
        { "retry-after": 5 },
      );
    }
    return { name, ready: true, consumers: Math.min(...infos.map((i) => i.consumers)) };
  });
}

/**
 * OIP v2 server and model metadata: GET /v2, /v2/models/{name}[/versions/{version}][/ready|/config|
 * /stats] and /v2/models/stats. A version other than the target's current one is 404.
 */
import type { FastifyInstance } from "fastify";
import { names, pipelineGaps, routeFor, type RuntimeConfig } from "../../shared/contracts/index.js";
import { checkAllowed } from "../auth.js";
import type { GatewayContext } from "../context.js";
import { ApiError } from "../errors.js";
import { modelConfiguration, modelMetadata, versionOf } from "../oip/model-metadata.js";
import { modelStats } from "../oip/model-stats.js";
import { routeModels } from "../tokens.js";

type NameParams = { Params: { name: string; version?: string } };

/** The route of a model or pipeline the tenant may call; 404 / 403 otherwise (also for a wrong version). */
export function resolveTarget(config: RuntimeConfig, tenant: string, name: string, version?: string) {
  const resolved = routeFor(config, name);
  if (!resolved) throw new ApiError("model_not_found", `there is no model or pipeline named ${name}`);
  checkAllowed(config, tenant, name);
  const current = versionOf(config, name);
  if (version !== undefined && version !== current) {
    throw new ApiError(
      "model_version_not_found",
      `${name} has no version ${version}; the version served is ${current}`,
    );
  }
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

/** The paths of a route under /v2/models/{name} and /v2/models/{name}/versions/{version}. */
export function versionedPaths(suffix: string): string[] {
  return [`/v2/models/:name${suffix}`, `/v2/models/:name/versions/:version${suffix}`];
}

/** Registers the metadata routes. */
export function modelRoutes(app: FastifyInstance, ctx: GatewayContext): void {
  app.get("/v2", async () => ({
    name: "turnpike",
    version: "v1alpha1",
    extensions: ["binary_tensor_data", "statistics", "async", "server-sent-events", "idempotency-key"],
  }));

  // Every target the tenant may call (a static route: fastify matches it before /v2/models/:name).
  app.get("/v2/models/stats", async (request) => {
    const config = ctx.config();
    const targets = [...config.models, ...config.pipelines]
      .filter((t) => mayCall(config, request.tenant, t.name))
      .map((t) => ({ name: t.name, version: versionOf(config, t.name)! }));
    return modelStats(ctx.metrics.inferOutcomes, targets);
  });

  /** GET <target><suffix> on every versioned path: the target is resolved (and allowed) first. */
  const onTarget = (
    suffix: string,
    answer: (config: RuntimeConfig, name: string, target: ReturnType<typeof resolveTarget>) => unknown,
  ) => {
    for (const path of versionedPaths(suffix)) {
      app.get<NameParams>(path, async (request) => {
        const config = ctx.config();
        const { name, version } = request.params;
        return answer(config, name, resolveTarget(config, request.tenant, name, version));
      });
    }
  };
  onTarget("", (config, name, target) => modelMetadata(config, name, target.kind, target.route));
  onTarget("/config", (config, name, target) => modelConfiguration(config, name, target.kind, target.route));
  onTarget("/stats", (config, name) =>
    modelStats(ctx.metrics.inferOutcomes, [{ name, version: versionOf(config, name)! }]),
  );

  for (const path of versionedPaths("/ready")) {
    app.get<NameParams>(path, async (request) => {
      const config = ctx.config();
      const { name, version } = request.params;
      const resolved = resolveTarget(config, request.tenant, name, version);
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
}

function mayCall(config: RuntimeConfig, tenant: string, name: string): boolean {
  try {
    checkAllowed(config, tenant, name);
    return true;
  } catch {
    return false;
  }
}

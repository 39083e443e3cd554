/**
 * The operator's one wiring file: config, prerequisites, the Controller with every kind's
 * registration, the Pepr module (watch mode) that feeds it, the Secret watch, and shutdown.
 * Import it only through operator/main.ts, which sets PEPR_WATCH_MODE before pepr loads.
 */
import { PeprModule } from "pepr";
import { logger } from "../runtime/shared/logger.js";
import { ensurePeprPrerequisites, ensureTls } from "./bootstrap.js";
import { turnpikeCapability } from "./capability.js";
import { loadOperatorEnv, settingsFrom } from "./config.js";
import { Controller } from "./controller.js";
import { inferenceModelRegistration } from "./inference-model/reconciler.js";
import { pipelineRegistration } from "./pipeline/reconciler.js";
import { renderRuntimeConfig } from "./runtime-config/render.js";
import { MANAGED_BY_TURNPIKE, WatchCache } from "./shared/watch-cache.js";
import { cachedChildKinds, CHILD_KINDS, kindServed, OWN_KINDS } from "./shared/children.js";
import { describeError } from "./shared/errors.js";
import { TENANT_QUOTA_KIND } from "./shared/names.js";
import { tenantQuotaRegistration } from "./tenant-quota/reconciler.js";
import { tenantSecretIndex } from "./tenant-quota/secret-index.js";
import { watchApiKeySecrets } from "./tenant-quota/secret-watch.js";

/** What PeprModule reads from a package.json: built here instead of a block in ours. */
export const peprPackage: ConstructorParameters<typeof PeprModule>[0] = {
  description: "Turnpike operator: InferenceModel, TenantQuota and Pipeline reconcilers",
  pepr: {
    // Names Pepr's store objects in pepr-system (pepr-turnpike-operator-store / -schedule).
    uuid: "turnpike-operator",
    // Admission settings are required by the type but unused: the operator runs no webhooks.
    onError: "ignore",
    webhookTimeout: 10,
    alwaysIgnore: { namespaces: [] },
    peprVersion: "1.1.4",
    appVersion: "0.1.0",
  },
};

export async function runOperator(): Promise<void> {
  if (process.env.PEPR_WATCH_MODE !== "true") {
    throw new Error("PEPR_WATCH_MODE must be 'true' before pepr is imported: start operator/main.ts");
  }
  const log = logger("operator");
  const env = loadOperatorEnv();
  const namespaces = env.TURNPIKE_WATCH_NAMESPACES;

  await ensurePeprPrerequisites(log);
  ensureTls(log);
  const settings = settingsFrom(env, await kindServed(CHILD_KINDS.ServiceMonitor));
  const kinds = [inferenceModelRegistration, tenantQuotaRegistration, pipelineRegistration];

  // Children are read from watch caches; listed once here, before the first reconcile.
  const [children, resources] = await Promise.all([
    WatchCache.start(cachedChildKinds(settings), namespaces, log, MANAGED_BY_TURNPIKE),
    WatchCache.start(Object.values(OWN_KINDS), namespaces, log),
  ]);
  const controller = new Controller({ env, settings, kinds, renderRuntimeConfig, children, resources });
  children.onEvent((kind, event, child) => controller.childChanged(kind.kind, event, child));
  resources.onEvent((kind, _event, object) => controller.resourceChanged(kind.kind, object));
  const capability = turnpikeCapability(controller, namespaces, log);
  const secrets = await watchApiKeySecrets(
    tenantSecretIndex,
    (namespace, quota) => controller.enqueue(TENANT_QUOTA_KIND, namespace, quota),
    namespaces,
    log,
  );
  new PeprModule(peprPackage, [capability], { deferStart: true }).start(env.TURNPIKE_OPERATOR_PORT);
  controller.start();
  log.info(
    {
      kinds: kinds.map((k) => k.kind),
      namespaces: namespaces.length ? namespaces : "all",
      port: env.TURNPIKE_OPERATOR_PORT,
    },
    "operator started",
  );

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping");
    secrets.close();
    void children.close();
    void resources.close();
    controller
      .stop()
      .catch((error) => log.warn({ error: describeError(error) }, "stopping the controller failed"))
      .finally(() => process.exit(0));
  };
  // Pepr also handles SIGTERM (closes its server and exits 143); whichever exits first wins.
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

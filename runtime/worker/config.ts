/**
 * The worker's process settings: the common runtime variables plus which model to serve.
 */
import { hostname } from "node:os";
import { z } from "zod";
import { commonEnvSchema, parseEnv } from "../shared/process-env.js";

/** Environment of the worker role: the common variables plus its own. */
export const workerEnvSchema = commonEnvSchema.extend({
  /** Name of the InferenceModel (in the runtime config) this worker serves. */
  TURNPIKE_MODEL: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a model name (lowercase DNS label)")
    .optional(),
  /** Unacked messages the broker may hand this worker; default 2 x the model's maxBatchSize. */
  TURNPIKE_PREFETCH: z.coerce.number().int().min(1).max(65535).optional(),
  /** How long close() / SIGTERM waits for in-flight work before closing the channel anyway. */
  TURNPIKE_DRAIN_TIMEOUT_MS: z.coerce.number().int().min(0).default(25_000),
  /**
   * Where pvc://<claim>/<path> model URIs are found (`<root>/<claim>/<path>`); default /models, where
   * the operator mounts claims. Local runs point it at a directory of their own.
   */
  TURNPIKE_PVC_ROOT: z.string().startsWith("/").optional(),
  /** The https:// or s3:// model this pod downloads (spec.model.uri); default the runtime config's uri. */
  TURNPIKE_MODEL_URI: z
    .string()
    .regex(/^(https|s3):\/\/.+/, "must be an https:// or s3:// uri")
    .optional(),
  /** sha256 of an https:// or s3:// model (spec.model.sha256): the download is verified against it. */
  TURNPIKE_MODEL_SHA256: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex digits")
    .optional(),
  /** Where an https:// or s3:// model is downloaded to (the pod's emptyDir); default under the temp dir. */
  TURNPIKE_MODEL_DOWNLOAD_DIR: z.string().startsWith("/").optional(),
  /** Name reported in StepTiming.worker; the pod name (HOSTNAME) in Kubernetes. */
  TURNPIKE_WORKER_ID: z.string().min(1).optional(),
});

/** The validated worker environment. */
export type WorkerEnv = z.infer<typeof workerEnvSchema>;

/** Parses and validates the worker's environment (throws one error naming every bad variable). */
export function readWorkerEnv(env: NodeJS.ProcessEnv = process.env): WorkerEnv {
  return parseEnv(workerEnvSchema, env);
}

/** The worker id: TURNPIKE_WORKER_ID, else the pod name, else host-pid. */
export function workerId(env: WorkerEnv, raw: NodeJS.ProcessEnv = process.env): string {
  return env.TURNPIKE_WORKER_ID ?? raw.HOSTNAME ?? `${hostname()}-${process.pid}`;
}

/** Prefetch: explicit, else two batches' worth, so the next batch is waiting while one runs. */
export function prefetchFor(env: WorkerEnv, maxBatchSize: number): number {
  return env.TURNPIKE_PREFETCH ?? 2 * maxBatchSize;
}

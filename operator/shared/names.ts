/**
 * Names that hold across a namespace, used by more than one resource folder: the kinds, the
 * runtime ConfigMap and where it is mounted, the runtime Secret's keys, model endpoints.
 * Resource folders import these from here, never from each other.
 */
import { RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";

export const INFERENCE_MODEL_KIND = "InferenceModel";
export const PIPELINE_KIND = "Pipeline";
export const TENANT_QUOTA_KIND = "TenantQuota";

/** The runtime ConfigMap the runtime-config reconciler renders in each namespace. */
export const RUNTIME_CONFIG_MAP = "turnpike-runtime";
/** Where workers read it (TURNPIKE_CONFIG); the ConfigMap is mounted as a directory, not subPath, so updates arrive. */
export const RUNTIME_CONFIG_DIR = "/etc/turnpike";
export const RUNTIME_CONFIG_PATH = `${RUNTIME_CONFIG_DIR}/${RUNTIME_CONFIG_KEY}`;

/** Keys of the runtime Secret (settings.runtimeSecret) that children reference; never inlined. */
export const SECRET_KEYS = {
  amqpUrl: "amqp-url",
  redisUrl: "redis-url",
  /** `http(s)://user:password@host:15672[/vhost]`: what KEDA's RabbitMQ scaler reads queue depth from. */
  rabbitmqManagementUrl: "rabbitmq-management-url",
} as const;

/** Where a pvc:// claim is mounted (runtime/shared/models/model-source.ts, PVC_MOUNT_ROOT). */
export const PVC_MOUNT_ROOT = "/models";
/** Where the worker downloads an https:// or s3:// model (an emptyDir of the pod). */
export const MODEL_DOWNLOAD_DIR = "/model-download";

/** The Open Inference Protocol v2 endpoint of a model or pipeline, relative to the namespace's gateway. */
export function endpointOf(name: string): string {
  return `/v2/models/${name}/infer`;
}

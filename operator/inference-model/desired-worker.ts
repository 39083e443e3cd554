/**
 * The model's worker pods and what surrounds them: Deployment, Service (metrics), PodDisruptionBudget
 * and ServiceMonitor. Pure functions of the (defaulted) InferenceModel and the operator settings.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { OperatorSettings } from "../config.js";
import { PermanentError } from "../shared/errors.js";
import { LABELS, childLabels, ownerReference, type OwnerRef } from "../shared/labels.js";
import type { DefaultedSpec } from "./defaults.js";
import {
  MODEL_DOWNLOAD_DIR,
  PVC_MOUNT_ROOT,
  RUNTIME_CONFIG_DIR,
  RUNTIME_CONFIG_MAP,
  RUNTIME_CONFIG_PATH,
  SECRET_KEYS,
} from "../shared/names.js";
import { HTTP_PORT, workerSelector } from "./naming.js";
import { runtimeCommand } from "../../runtime/shared/node-flags.js";

/** Everything a child builder needs. */
export interface ModelFacts {
  owner: OwnerRef;
  namespace: string;
  spec: DefaultedSpec;
  settings: OperatorSettings;
}

/** Base grace period: a batch in flight finishes, its result is confirmed, then the message is acked. */
const DRAIN_SECONDS = 60;
/** What the worker keeps for closing its channel and connection after draining. */
const CLOSE_MARGIN_SECONDS = 10;
/** startupProbe budget for loading and warming the model: 120 x 5 s = 10 minutes. */
const STARTUP_FAILURE_THRESHOLD = 120;

/** Replicas the Deployment runs: what the autoscaler (or kubectl scale) set, never below minReplicas. */
export function desiredReplicas(spec: DefaultedSpec): number {
  return Math.max(spec.replicas ?? 0, spec.scaling.minReplicas);
}

/** Seconds the kubelet waits after SIGTERM: long enough to drain a batch, including its batching delay. */
export function terminationGraceSeconds(spec: DefaultedSpec): number {
  return DRAIN_SECONDS + Math.ceil(spec.batching.maxDelayMs / 1000);
}

function metadata(facts: ModelFacts, component: string, name = facts.owner.name) {
  return {
    name,
    namespace: facts.namespace,
    labels: childLabels(facts.owner, component),
    ownerReferences: [ownerReference(facts.owner)],
  };
}

interface ModelVolume {
  volume: Record<string, unknown>;
  mount: Record<string, unknown>;
}

/** Whether the worker downloads `uri` (https://, s3://) into the pod instead of reading it in place. */
export function isDownloaded(uri: string): boolean {
  return /^(https|s3):\/\//i.test(uri);
}

/**
 * Volumes that make an artifact uri readable in the pod: npm:// ships in the image and file:// is a
 * path inside it (nothing to mount); pvc://<claim>/<path> mounts the claim read-only at
 * /models/<claim>; a downloaded model (https://, s3://, only for spec.model) gets an emptyDir the
 * worker fills once per pod. Other schemes are refused here rather than crash-looping in the pod.
 */
function artifactVolume(field: string, uri: string | undefined, volumeName: string): ModelVolume | undefined {
  if (!uri) return undefined;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(uri)?.[1]?.toLowerCase();
  if (scheme === "npm" || scheme === "file") return undefined;
  if (field === "spec.model.uri" && isDownloaded(uri)) {
    // No sizeLimit: the model's size is unknown here, and going over a limit evicts the pod.
    return {
      volume: { name: volumeName, emptyDir: {} },
      mount: { name: volumeName, mountPath: MODEL_DOWNLOAD_DIR },
    };
  }
  if (scheme === "pvc") {
    const claim = uri.slice("pvc://".length).split("/")[0] ?? "";
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(claim)) {
      throw new PermanentError(
        "InvalidModelSource",
        `${field} ${uri}: "${claim}" is not a PersistentVolumeClaim name; use pvc://<claim>/<path>`,
      );
    }
    return {
      volume: { name: volumeName, persistentVolumeClaim: { claimName: claim, readOnly: true } },
      mount: { name: volumeName, mountPath: `${PVC_MOUNT_ROOT}/${claim}`, readOnly: true },
    };
  }
  throw new PermanentError(
    "UnsupportedModelSource",
    `${field} ${uri}: the runtime does not read ${scheme ?? "scheme-less"} sources here; put the file ` +
      "on a PersistentVolumeClaim and use pvc://<claim>/<path>, or bake it into the image and use file:///<path>",
  );
}

function modelVolumes(spec: DefaultedSpec): ModelVolume[] {
  const model = artifactVolume("spec.model.uri", spec.model.uri, "model");
  const tokenizer = artifactVolume("spec.tokens.tokenizer.uri", spec.tokens.tokenizer?.uri, "tokenizer");
  // One mount per claim: a tokenizer on the model's claim is already there.
  const sameClaim = model && tokenizer && model.mount.mountPath === tokenizer.mount.mountPath;
  return [model, sameClaim ? undefined : tokenizer].filter((v): v is ModelVolume => v !== undefined);
}

function resources(spec: DefaultedSpec): Record<string, unknown> {
  const out: Record<string, Record<string, number | string>> = {};
  if (spec.resources?.requests) out.requests = { ...spec.resources.requests };
  if (spec.resources?.limits) out.limits = { ...spec.resources.limits };
  if (spec.gpu) {
    // Extended resources go in limits (requests default to them); the scheduler then places the pod on a GPU node.
    out.limits = { ...out.limits, [spec.gpu.resourceName ?? "nvidia.com/gpu"]: String(spec.gpu.count) };
  }
  return out;
}

function secretEnv(name: string, secret: string, key: string, optional?: boolean) {
  return { name, valueFrom: { secretKeyRef: { name: secret, key, ...(optional ? { optional } : {}) } } };
}

/**
 * What the worker needs to download and verify an https:// or s3:// model: the digest, the
 * emptyDir, and for S3 the variables AWS's SDKs and KServe's storage initializer read (the
 * credentials straight from the user's Secret). A changed digest or source rolls the pods, so each
 * new pod downloads the new file into a fresh emptyDir.
 */
function downloadEnv(spec: DefaultedSpec): Record<string, unknown>[] {
  const { model } = spec;
  if (!isDownloaded(model.uri)) return [];
  const s3 = model.uri.startsWith("s3://") ? model.s3 : undefined;
  const secret = s3?.secretRef?.name;
  return [
    // The pod carries source and digest together, so it never pairs a new digest with an old uri
    // from a runtime config that has not caught up yet.
    { name: "TURNPIKE_MODEL_URI", value: model.uri },
    { name: "TURNPIKE_MODEL_SHA256", value: model.sha256 ?? "" },
    { name: "TURNPIKE_MODEL_DOWNLOAD_DIR", value: MODEL_DOWNLOAD_DIR },
    ...(s3?.endpoint ? [{ name: "AWS_ENDPOINT_URL", value: s3.endpoint }] : []),
    ...(s3?.region ? [{ name: "AWS_REGION", value: s3.region }] : []),
    ...(secret
      ? [
          secretEnv("AWS_ACCESS_KEY_ID", secret, "AWS_ACCESS_KEY_ID"),
          secretEnv("AWS_SECRET_ACCESS_KEY", secret, "AWS_SECRET_ACCESS_KEY"),
          secretEnv("AWS_SESSION_TOKEN", secret, "AWS_SESSION_TOKEN", true),
        ]
      : []),
  ];
}

/** The worker Deployment. */
export function workerDeployment(facts: ModelFacts): KubernetesObject {
  const { owner, spec, settings } = facts;
  const selector = workerSelector(owner.name);
  const grace = terminationGraceSeconds(spec);
  const volumes = modelVolumes(spec);
  const gpu = Boolean(spec.gpu);
  const probe = (path: string) => ({ httpGet: { path, port: "http" } });
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: metadata(facts, "worker"),
    spec: {
      replicas: desiredReplicas(spec),
      revisionHistoryLimit: 3,
      selector: { matchLabels: selector },
      // Capacity never drops during a rollout; on GPU nodes a surge pod would wait for a free GPU,
      // so replace one at a time there instead (requests wait in the durable queue meanwhile).
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: gpu ? { maxSurge: 0, maxUnavailable: 1 } : { maxSurge: 1, maxUnavailable: 0 },
      },
      template: {
        metadata: { labels: { ...childLabelsWithoutGeneration(owner), ...selector } },
        spec: {
          // The runtime never talks to the Kubernetes API.
          automountServiceAccountToken: false,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: grace,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 10001,
            runAsGroup: 10001,
            fsGroup: 10001,
            seccompProfile: { type: "RuntimeDefault" },
          },
          ...(spec.placement?.nodeSelector ? { nodeSelector: spec.placement.nodeSelector } : {}),
          ...(spec.placement?.tolerations ? { tolerations: spec.placement.tolerations } : {}),
          ...(spec.placement?.priorityClassName
            ? { priorityClassName: spec.placement.priorityClassName }
            : {}),
          containers: [
            {
              name: "worker",
              image: spec.runtime.image ?? settings.runtimeImage,
              imagePullPolicy: "IfNotPresent",
              // The image's entry point with the worker's node flags (runtime/shared/node-flags.ts).
              command: runtimeCommand("worker"),
              args: ["worker"],
              env: [
                { name: "TURNPIKE_ROLE", value: "worker" },
                { name: "TURNPIKE_MODEL", value: owner.name },
                { name: "TURNPIKE_CONFIG", value: RUNTIME_CONFIG_PATH },
                { name: "TURNPIKE_PORT", value: String(HTTP_PORT) },
                // Drain finishes before the kubelet's SIGKILL, with time left to close cleanly.
                { name: "TURNPIKE_DRAIN_TIMEOUT_MS", value: String((grace - CLOSE_MARGIN_SECONDS) * 1000) },
                secretEnv("TURNPIKE_AMQP_URL", settings.runtimeSecret, SECRET_KEYS.amqpUrl),
                secretEnv("TURNPIKE_REDIS_URL", settings.runtimeSecret, SECRET_KEYS.redisUrl),
                ...downloadEnv(spec),
              ],
              ports: [{ name: "http", containerPort: HTTP_PORT, protocol: "TCP" }],
              // Ready only once the model is loaded, warmed up and consuming (the worker's /readyz).
              readinessProbe: {
                ...probe("/readyz"),
                periodSeconds: 5,
                timeoutSeconds: 3,
                failureThreshold: 3,
              },
              livenessProbe: {
                ...probe("/healthz"),
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              // Liveness starts only after the model is warm: a large model may take minutes to load.
              startupProbe: {
                ...probe("/readyz"),
                periodSeconds: 5,
                timeoutSeconds: 3,
                failureThreshold: STARTUP_FAILURE_THRESHOLD,
              },
              resources: resources(spec),
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                runAsNonRoot: true,
                capabilities: { drop: ["ALL"] },
              },
              volumeMounts: [
                { name: "runtime-config", mountPath: RUNTIME_CONFIG_DIR, readOnly: true },
                { name: "tmp", mountPath: "/tmp" },
                ...volumes.map((v) => v.mount),
              ],
            },
          ],
          volumes: [
            { name: "runtime-config", configMap: { name: RUNTIME_CONFIG_MAP } },
            { name: "tmp", emptyDir: { sizeLimit: "1Gi" } },
            ...volumes.map((v) => v.volume),
          ],
        },
      },
    },
  } as KubernetesObject;
}

/** Pod labels: the child labels minus the owner generation (which would restart pods on every scale). */
function childLabelsWithoutGeneration(owner: OwnerRef): Record<string, string> {
  const labels = childLabels(owner, "worker");
  delete labels[LABELS.ownerGeneration];
  return labels;
}

/**
 * The Service of the workers, for their ServiceMonitor's scrapes (requests arrive over the queue;
 * applied only with the ServiceMonitor, see desiredChildren). Headless:
 * scraping reads its endpoints, and a virtual IP per model would be one more object to allocate
 * and store per model, a proxy rule on every node, and a service range to run out of.
 */
export function workerService(facts: ModelFacts): KubernetesObject {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: metadata(facts, "worker"),
    spec: {
      type: "ClusterIP",
      clusterIP: "None",
      selector: workerSelector(facts.owner.name),
      ports: [{ name: "http", port: HTTP_PORT, targetPort: "http", protocol: "TCP" }],
    },
  } as KubernetesObject;
}

/**
 * Whether the model gets a PodDisruptionBudget: only when more than one replica is running or
 * guaranteed. With a single replica any budget either blocks node drains forever (minAvailable 1)
 * or allows everything (maxUnavailable 1), so none is better.
 */
export function wantsDisruptionBudget(spec: DefaultedSpec): boolean {
  return spec.scaling.minReplicas > 1 || desiredReplicas(spec) > 1;
}

/** At most one worker voluntarily evicted at a time; crash-looping pods never block a drain. */
export function workerDisruptionBudget(facts: ModelFacts): KubernetesObject {
  return {
    apiVersion: "policy/v1",
    kind: "PodDisruptionBudget",
    metadata: metadata(facts, "worker"),
    spec: {
      maxUnavailable: 1,
      selector: { matchLabels: workerSelector(facts.owner.name) },
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  } as KubernetesObject;
}

/** Prometheus Operator scrape config for the workers' /metrics (token throughput feeds KEDA). */
export function workerServiceMonitor(facts: ModelFacts): KubernetesObject {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "ServiceMonitor",
    metadata: metadata(facts, "worker"),
    spec: {
      selector: { matchLabels: workerSelector(facts.owner.name) },
      endpoints: [{ port: "http", path: "/metrics", interval: "15s" }],
    },
  } as KubernetesObject;
}

/**
 * What a container of a Pod becomes on this machine: the runtime image's role as a local entry
 * point, its env with `valueFrom` resolved, its volumes as local directories (ConfigMaps and Secrets
 * written as files, kept current), mount paths and container ports rewritten to local ones.
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { V1Container, V1EnvVar, V1Pod, V1Volume } from "@kubernetes/client-node";
import { PVC_MOUNT_ROOT } from "../../runtime/shared/models/model-source.js";
import { nodeFlagsOf } from "../../runtime/shared/node-flags.js";
import { KubeApi, KubeApiError } from "./kube-api.js";

/** The roles the runtime image's entry point (docker/turnpike-runtime.mjs) dispatches to. */
const RUNTIME_ROLES = ["gateway", "worker", "collector"];
const RUNTIME_IMAGE = /(^|\/)turnpike-runtime(:|@|$)/;

/** A container's configuration problem: the kubelet's CreateContainerConfigError and friends. */
export class ContainerConfigError extends Error {
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export interface Entry {
  command: string;
  args: string[];
}

/** The local entry point of a runtime-image container (its role from args[0] or TURNPIKE_ROLE). */
export function entryPoint(container: V1Container, repoRoot: string): Entry {
  if (!RUNTIME_IMAGE.test(container.image ?? "")) {
    throw new ContainerConfigError(
      "ImageNotRunnable",
      `the node agent runs only the Turnpike runtime image, not ${container.image}`,
    );
  }
  const role = container.args?.[0] ?? container.env?.find((e) => e.name === "TURNPIKE_ROLE")?.value;
  if (!role || !RUNTIME_ROLES.includes(role)) {
    throw new ContainerConfigError("RunContainerError", `unknown runtime role ${JSON.stringify(role ?? "")}`);
  }
  // The node flags of the container's command (e.g. the worker's heap setting) apply here too.
  return {
    command: process.execPath,
    args: [...nodeFlagsOf(container.command), "--import", "tsx", join(repoRoot, `runtime/${role}/main.ts`)],
  };
}

async function getData(api: KubeApi, namespace: string, kind: "secrets" | "configmaps", name: string) {
  try {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const object: any = await api.call("GET", `/api/v1/namespaces/${namespace}/${kind}/${name}`);
    // binaryData (e.g. the gzipped runtime config) becomes files of raw bytes, as the kubelet writes them.
    if (kind === "configmaps")
      return {
        ...((object.data ?? {}) as Record<string, string>),
        ...Object.fromEntries(
          Object.entries((object.binaryData ?? {}) as Record<string, string>).map(([k, v]) => [
            k,
            Buffer.from(v, "base64"),
          ]),
        ),
      } as Record<string, string | Buffer>;
    return Object.fromEntries(
      Object.entries((object.data ?? {}) as Record<string, string>).map(([k, v]) => [
        k,
        Buffer.from(v, "base64").toString("utf8"),
      ]),
    );
  } catch (error) {
    if (error instanceof KubeApiError && error.status === 404) return undefined;
    throw error;
  }
}

/** Env of one container, `valueFrom` (Secrets, ConfigMaps, fields) and `envFrom` resolved. */
export async function resolveEnv(
  api: KubeApi,
  pod: V1Pod,
  container: V1Container,
): Promise<Record<string, string>> {
  const namespace = pod.metadata!.namespace!;
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const ref = source.secretRef ?? source.configMapRef;
    if (!ref) continue;
    const data = await getData(api, namespace, source.secretRef ? "secrets" : "configmaps", ref.name!);
    if (!data && !ref.optional)
      throw new ContainerConfigError("CreateContainerConfigError", `${ref.name} not found`);
    for (const [k, v] of Object.entries(data ?? {})) env[`${source.prefix ?? ""}${k}`] = v.toString();
  }
  for (const variable of container.env ?? []) {
    const value = await resolveVar(api, pod, variable);
    if (value !== undefined) env[variable.name] = value;
  }
  return env;
}

async function resolveVar(api: KubeApi, pod: V1Pod, variable: V1EnvVar): Promise<string | undefined> {
  if (variable.value !== undefined || !variable.valueFrom) return variable.value ?? "";
  const { secretKeyRef, configMapKeyRef, fieldRef } = variable.valueFrom;
  const ref = secretKeyRef ?? configMapKeyRef;
  if (ref) {
    const kind = secretKeyRef ? "secrets" : "configmaps";
    const data = await getData(api, pod.metadata!.namespace!, kind, ref.name!);
    const value = data?.[ref.key]?.toString();
    if (value === undefined && !ref.optional) {
      throw new ContainerConfigError(
        "CreateContainerConfigError",
        `${variable.name}: ${kind === "secrets" ? "secret" : "configmap"} ${ref.name} key ${ref.key} not found`,
      );
    }
    return value;
  }
  if (fieldRef) {
    const fields: Record<string, string | undefined> = {
      "metadata.name": pod.metadata?.name,
      "metadata.namespace": pod.metadata?.namespace,
      "metadata.uid": pod.metadata?.uid,
      "spec.nodeName": pod.spec?.nodeName,
      "spec.serviceAccountName": pod.spec?.serviceAccountName,
      "status.podIP": "127.0.0.1",
      "status.hostIP": "127.0.0.1",
    };
    return fields[fieldRef.fieldPath];
  }
  return undefined;
}

/** Writes `files` into `dir` (write-then-rename per file, so a reader never sees half a file). */
function writeFiles(dir: string, files: Record<string, string | Buffer>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) {
    const path = join(dir, name);
    let current: Buffer | undefined;
    try {
      current = readFileSync(path);
    } catch {
      current = undefined;
    }
    if (current?.equals(typeof text === "string" ? Buffer.from(text) : text)) continue;
    writeFileSync(`${path}.tmp`, text);
    renameSync(`${path}.tmp`, path);
  }
  // A key gone from the ConfigMap or Secret is gone from the volume, as under a kubelet (the runtime
  // config moves from runtime.json to runtime.json.gz as it grows).
  const kept = new Set(Object.keys(files).map((name) => name.split("/")[0]));
  for (const name of readdirSync(dir)) if (!kept.has(name)) rmSync(join(dir, name), { force: true });
}

/** Materialises the Pod's volumes under `podDir`; returns the local directory of each volume. */
export async function syncVolumes(
  api: KubeApi,
  pod: V1Pod,
  podDir: string,
  pvcRoot: string,
): Promise<Map<string, string>> {
  const dirs = new Map<string, string>();
  for (const volume of pod.spec?.volumes ?? []) {
    const dir = join(podDir, "volumes", volume.name);
    dirs.set(volume.name, dir);
    await syncVolume(api, pod, volume, dir, pvcRoot);
  }
  return dirs;
}

/** Points `link` at `target` once (both local directories). */
function linkDir(target: string, link: string): void {
  mkdirSync(target, { recursive: true });
  if (existsSync(link)) return;
  mkdirSync(join(link, ".."), { recursive: true });
  symlinkSync(target, link, "dir");
}

async function syncVolume(
  api: KubeApi,
  pod: V1Pod,
  volume: V1Volume,
  dir: string,
  pvcRoot: string,
): Promise<void> {
  // A claim stands for the local directory <pvcRoot>/<claim>: what a bound volume would hold.
  if (volume.persistentVolumeClaim)
    return linkDir(join(pvcRoot, volume.persistentVolumeClaim.claimName), dir);
  const source = volume.configMap ?? volume.secret;
  if (!source) {
    // emptyDir and anything else: an empty local directory (host paths are not mounted here).
    mkdirSync(dir, { recursive: true });
    return;
  }
  const name = volume.configMap?.name ?? volume.secret?.secretName ?? "";
  const data = await getData(
    api,
    pod.metadata!.namespace!,
    volume.configMap ? "configmaps" : "secrets",
    name,
  );
  if (!data) {
    if (source.optional) {
      mkdirSync(dir, { recursive: true });
      return;
    }
    throw new ContainerConfigError("ContainerCreating", `volume ${volume.name}: ${name} not found yet`);
  }
  const files = source.items
    ? Object.fromEntries(source.items.filter((i) => i.key in data).map((i) => [i.path, data[i.key]!]))
    : data;
  writeFiles(dir, files);
}

/**
 * Rewrites the container's view to this machine: a value under a mount path points into the
 * volume's local directory, and a *PORT variable holding a container port holds its local port.
 */
export function localiseEnv(
  env: Record<string, string>,
  container: V1Container,
  volumeDirs: Map<string, string>,
  ports: Map<number, number>,
): Record<string, string> {
  const mounts = (container.volumeMounts ?? [])
    .map((m) => ({ path: m.mountPath.replace(/\/$/, ""), dir: volumeDirs.get(m.name) }))
    .filter((m): m is { path: string; dir: string } => m.dir !== undefined)
    .sort((a, b) => b.path.length - a.path.length);
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    const mount = mounts.find((m) => value === m.path || value.startsWith(`${m.path}/`));
    if (mount) out[name] = mount.dir + value.slice(mount.path.length);
    else if (name.endsWith("PORT") && ports.has(Number(value))) out[name] = String(ports.get(Number(value)));
    else out[name] = value;
  }
  return out;
}

/**
 * The runtime finds pvc:// claims under TURNPIKE_PVC_ROOT (in a container: the mounts at
 * /models/<claim>). Locally that root is a directory of the Pod's own, linking each such mount.
 */
export function pvcRootEnv(
  container: V1Container,
  volumeDirs: Map<string, string>,
  podDir: string,
): Record<string, string> {
  const root = join(podDir, "pvc-root", container.name);
  let linked = false;
  for (const mount of container.volumeMounts ?? []) {
    const dir = volumeDirs.get(mount.name);
    if (!dir || !mount.mountPath.startsWith(`${PVC_MOUNT_ROOT}/`)) continue;
    linkDir(dir, join(root, mount.mountPath.slice(PVC_MOUNT_ROOT.length + 1)));
    linked = true;
  }
  return linked ? { TURNPIKE_PVC_ROOT: root } : {};
}

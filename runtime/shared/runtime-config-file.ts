/**
 * Reading the runtime config file and following its changes; the schema is in contracts/. A large
 * namespace's config comes gzipped as `<path>.gz` (the ConfigMap key `runtime.json.gz`) instead.
 */
import { readFileSync, watchFile, unwatchFile } from "node:fs";
import { gunzipSync } from "node:zlib";
import { parseRuntimeConfig, type RuntimeConfig } from "./contracts/index.js";

/** The file's text: `path`, or else the gzipped `path.gz`. */
function readConfigText(path: string): { text: string; file: string } {
  try {
    return { text: readFileSync(path, "utf8"), file: path };
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code !== "ENOENT")
      throw new Error(`reading runtime config ${path}`, { cause });
  }
  const gzipped = `${path}.gz`;
  let bytes: Buffer;
  try {
    bytes = readFileSync(gzipped);
  } catch (cause) {
    throw new Error(`reading runtime config ${path} (nor ${gzipped} found)`, { cause });
  }
  try {
    return { text: gunzipSync(bytes).toString("utf8"), file: gzipped };
  } catch (cause) {
    throw new Error(`runtime config ${gzipped} is not valid gzip`, { cause });
  }
}

/** Reads and validates the config file. */
export function readRuntimeConfig(path: string): RuntimeConfig {
  const { text, file } = readConfigText(path);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new Error(`runtime config ${file} is not valid JSON`, { cause });
  }
  return parseRuntimeConfig(raw, `runtime config ${file}`);
}

/**
 * Calls `onChange` with each new valid config. Polls, because a ConfigMap volume swaps a symlink
 * (inotify on the file misses it); both names, since the operator switches between them as the
 * config grows or shrinks. An invalid new file is reported and the old config kept.
 */
export function watchRuntimeConfig(
  path: string,
  onChange: (config: RuntimeConfig) => void,
  onError: (error: Error) => void,
  intervalMs = 1000,
): () => void {
  let last: string | undefined;
  const listener = () => {
    try {
      const config = readRuntimeConfig(path);
      // A switch of format fires both watchers for one config: report it once.
      const text = JSON.stringify(config);
      if (text === last) return;
      last = text;
      onChange(config);
    } catch (error) {
      onError(error as Error);
    }
  };
  const paths = [path, `${path}.gz`];
  for (const p of paths) watchFile(p, { interval: intervalMs }, listener);
  return () => {
    for (const p of paths) unwatchFile(p, listener);
  };
}

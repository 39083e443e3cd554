/** Reading the runtime config file and following its changes; the schema is in contracts/. */
import { readFileSync, watchFile, unwatchFile } from "node:fs";
import { parseRuntimeConfig, type RuntimeConfig } from "./contracts/index.js";

/** Reads and validates the config file. */
export function readRuntimeConfig(path: string): RuntimeConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new Error(`reading runtime config ${path}`, { cause });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new Error(`runtime config ${path} is not valid JSON`, { cause });
  }
  return parseRuntimeConfig(raw, `runtime config ${path}`);
}

/**
 * Calls `onChange` with each new valid config. Polls, because a ConfigMap volume swaps a symlink
 * (inotify on the file misses it). An invalid new file is reported and the old config kept.
 */
export function watchRuntimeConfig(
  path: string,
  onChange: (config: RuntimeConfig) => void,
  onError: (error: Error) => void,
  intervalMs = 1000,
): () => void {
  const listener = () => {
    try {
      onChange(readRuntimeConfig(path));
    } catch (error) {
      onError(error as Error);
    }
  };
  watchFile(path, { interval: intervalMs }, listener);
  return () => unwatchFile(path, listener);
}

/**
 * How a validated runtime config is carried in its ConfigMap (pure). A ConfigMap holds at most
 * 1 MiB of data, and the config grows by about 1 KB per model (pretty JSON), so a namespace of
 * about 1,000 models would no longer fit. Small configs stay readable JSON under `runtime.json`;
 * larger ones are compact JSON gzipped into `binaryData` under `runtime.json.gz` (about 16:1 on
 * model entries, about 28 bytes per model: some 35,000 models fit). Beyond the ceiling the config
 * is refused, never truncated.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import {
  RUNTIME_CONFIG_GZIP_KEY,
  parseRuntimeConfig,
  RUNTIME_CONFIG_KEY,
  type RuntimeConfig,
} from "../../runtime/shared/contracts/index.js";

/** Pretty JSON up to this size stays in `data` (what `kubectl get -o yaml` shows readably). */
export const PLAIN_CONFIG_MAX_BYTES = 256 * 1024;
/**
 * The most gzipped bytes one ConfigMap carries: the apiserver's limit is 1 MiB (1,048,576 bytes)
 * of data; the rest is left for metadata and the base64 of the request under etcd's 1.5 MiB.
 */
export const GZIP_CONFIG_MAX_BYTES = 1_000_000;

export type RuntimeConfigData =
  | { data: Record<string, string>; binaryData?: undefined; bytes: number }
  | { data?: undefined; binaryData: Record<string, string>; bytes: number };

/** The config is too large for one ConfigMap even gzipped. */
export class RuntimeConfigTooLargeError extends Error {
  constructor(
    readonly bytes: number,
    readonly models: number,
  ) {
    super(
      `the runtime config of ${models} models is ${bytes} bytes gzipped, more than the ` +
        `${GZIP_CONFIG_MAX_BYTES} one ConfigMap carries; split the models over namespaces`,
    );
    this.name = "RuntimeConfigTooLargeError";
  }
}

/** `data` or `binaryData` of the ConfigMap; deterministic (gzip sets no time), so equal configs render equal. */
export function runtimeConfigData(config: RuntimeConfig): RuntimeConfigData {
  const pretty = `${JSON.stringify(config, null, 2)}\n`;
  const plainBytes = Buffer.byteLength(pretty);
  if (plainBytes <= PLAIN_CONFIG_MAX_BYTES)
    return { data: { [RUNTIME_CONFIG_KEY]: pretty }, bytes: plainBytes };
  const gzipped = gzipSync(JSON.stringify(config), { level: 9 });
  if (gzipped.length > GZIP_CONFIG_MAX_BYTES)
    throw new RuntimeConfigTooLargeError(gzipped.length, config.models.length);
  return { binaryData: { [RUNTIME_CONFIG_GZIP_KEY]: gzipped.toString("base64") }, bytes: gzipped.length };
}

/** The config a live ConfigMap carries (either key), or undefined when absent or unreadable (pure). */
export function configOfConfigMap(
  configMap: { data?: Record<string, string>; binaryData?: Record<string, string> } | undefined,
): RuntimeConfig | undefined {
  try {
    const plain = configMap?.data?.[RUNTIME_CONFIG_KEY];
    const gzipped = configMap?.binaryData?.[RUNTIME_CONFIG_GZIP_KEY];
    if (plain !== undefined) return parseRuntimeConfig(JSON.parse(plain));
    if (gzipped !== undefined)
      return parseRuntimeConfig(JSON.parse(gunzipSync(Buffer.from(gzipped, "base64")).toString("utf8")));
  } catch {
    // Unreadable (another writer's): every model counts as not carried.
  }
  return undefined;
}

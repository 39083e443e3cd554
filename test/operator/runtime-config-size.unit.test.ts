/** How the runtime config is carried as it grows: readable JSON, then gzip, then a clear refusal. */
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import {
  GZIP_CONFIG_MAX_BYTES,
  PLAIN_CONFIG_MAX_BYTES,
  runtimeConfigData,
  RuntimeConfigTooLargeError,
} from "../../operator/runtime-config/config-map-data.js";
import { desiredRuntimeConfig, runtimeConfigMap } from "../../operator/runtime-config/desired.js";
import {
  parseRuntimeConfig,
  RUNTIME_CONFIG_GZIP_KEY,
  RUNTIME_CONFIG_KEY,
  type RuntimeConfig,
} from "../../runtime/shared/contracts/index.js";
import { syntheticModels } from "./helpers/synthetic-models.js";

const configOf = (count: number) =>
  parseRuntimeConfig(desiredRuntimeConfig("models", syntheticModels(count), [], []).config);

describe("runtime config size", () => {
  it("keeps a small namespace's config as readable JSON under runtime.json", () => {
    const configMap = runtimeConfigMap("models", configOf(50));
    expect(Object.keys(configMap.data!)).toEqual([RUNTIME_CONFIG_KEY]);
    expect(configMap.binaryData).toBeUndefined();
  });

  it("gzips 10,000 models into runtime.json.gz, well inside one ConfigMap, the same bytes every time", () => {
    const config = configOf(10_000);
    expect(JSON.stringify(config, null, 2).length).toBeGreaterThan(1024 * 1024);
    const configMap = runtimeConfigMap("models", config);
    expect(configMap.data).toBeUndefined();
    const gzipped = Buffer.from(configMap.binaryData![RUNTIME_CONFIG_GZIP_KEY]!, "base64");
    expect(gzipped.length).toBeLessThan(GZIP_CONFIG_MAX_BYTES / 2);
    expect(parseRuntimeConfig(JSON.parse(gunzipSync(gzipped).toString("utf8")))).toEqual(config);
    // Deterministic, so the desired-hash skip makes a no-op resync write nothing.
    expect(runtimeConfigMap("models", configOf(10_000))).toEqual(configMap);
  });

  it("switches to gzip just past the plain limit", () => {
    let count = 100;
    while (JSON.stringify(configOf(count), null, 2).length + 1 <= PLAIN_CONFIG_MAX_BYTES) count += 100;
    expect(runtimeConfigData(configOf(count)).binaryData).toBeDefined();
  });

  it("refuses a config that does not fit even gzipped, saying how large and what to do", () => {
    // Incompressible URIs (hash digests, about 330 random bytes each): 4,000 models pass the ceiling.
    const base = configOf(1).models[0]!;
    const random = (i: number) =>
      [0, 1, 2, 3, 4].map((k) => createHash("sha512").update(`${i}/${k}`).digest("base64url")).join("");
    const config: RuntimeConfig = {
      ...configOf(0),
      models: Array.from({ length: 4000 }, (_, i) => ({
        ...base,
        name: `m-${i}`,
        uri: `https://x.example/${random(i)}`,
      })),
    };
    let error: unknown;
    try {
      runtimeConfigData(config);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(RuntimeConfigTooLargeError);
    expect((error as RuntimeConfigTooLargeError).models).toBe(4000);
    expect((error as Error).message).toMatch(
      /4000 models is \d+ bytes gzipped, more than the 1000000 .*split the models over namespaces/,
    );
  });
});

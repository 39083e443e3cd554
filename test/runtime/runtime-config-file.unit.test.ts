/** The runtime's config file reader: plain runtime.json, gzipped runtime.json.gz, and the switch. */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readRuntimeConfig, watchRuntimeConfig } from "../../runtime/shared/runtime-config-file.js";
import type { RuntimeConfig } from "../../runtime/shared/contracts/index.js";

const config = (prefix: string): RuntimeConfig => ({ prefix, models: [], pipelines: [], tenants: [] });

const dirs: string[] = [];
const tempDir = () => {
  const dir = mkdtempSync(join(tmpdir(), "runtime-config-"));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe("readRuntimeConfig", () => {
  it("reads runtime.json, or else runtime.json.gz", () => {
    const dir = tempDir();
    const path = join(dir, "runtime.json");
    writeFileSync(`${path}.gz`, gzipSync(JSON.stringify(config("gz"))));
    expect(readRuntimeConfig(path).prefix).toBe("gz");
    writeFileSync(path, JSON.stringify(config("plain")));
    expect(readRuntimeConfig(path).prefix).toBe("plain");
  });

  it("says which file is missing or broken", () => {
    const dir = tempDir();
    const path = join(dir, "runtime.json");
    expect(() => readRuntimeConfig(path)).toThrow(/nor .*runtime\.json\.gz found/);
    writeFileSync(`${path}.gz`, "not gzip");
    expect(() => readRuntimeConfig(path)).toThrow(/runtime\.json\.gz is not valid gzip/);
    writeFileSync(`${path}.gz`, gzipSync("{"));
    expect(() => readRuntimeConfig(path)).toThrow(/runtime\.json\.gz is not valid JSON/);
  });
});

describe("watchRuntimeConfig", () => {
  it("follows the config from runtime.json to runtime.json.gz and back", async () => {
    const dir = tempDir();
    const path = join(dir, "runtime.json");
    writeFileSync(path, JSON.stringify(config("p1")));
    const seen: string[] = [];
    const errors: Error[] = [];
    const stop = watchRuntimeConfig(
      path,
      (c) => seen.push(c.prefix),
      (e) => errors.push(e),
      20,
    );
    try {
      // As a kubelet swaps the volume's files: the new key appears, the old one goes.
      writeFileSync(`${path}.gz.tmp`, gzipSync(JSON.stringify(config("p2"))));
      renameSync(`${path}.gz.tmp`, `${path}.gz`);
      rmSync(path);
      await vi.waitFor(() => expect(seen).toContain("p2"), { timeout: 5000, interval: 20 });
      writeFileSync(path, JSON.stringify(config("p3")));
      rmSync(`${path}.gz`);
      await vi.waitFor(() => expect(seen).toContain("p3"), { timeout: 5000, interval: 20 });
      expect(seen.filter((p) => p === "p2")).toHaveLength(1);
    } finally {
      stop();
    }
  });
});

/**
 * The committed crds/, operator/api/generated/ and docs/api.md are exactly what `npm run gen:crds`
 * produces from operator/api. Regenerates into a temporary directory and compares file by file.
 */
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import { repoRoot } from "../harness/kube.js";
import { GENERATED_HEADER } from "../../operator/api/render.js";

const execFileAsync = promisify(execFile);
const out = mkdtempSync(join(tmpdir(), "turnpike-gen-"));
const dirs = ["crds", "operator/api/generated"];

/** Files in dir that carry the generated header (others, e.g. third-party CRDs, are not ours). */
function generatedFiles(root: string, dir: string): string[] {
  const path = join(root, dir);
  if (!existsSync(path)) return [];
  return readdirSync(path, { withFileTypes: true })
    .filter(
      (e) => e.isFile() && readFileSync(join(path, e.name), "utf8").slice(0, 200).includes(GENERATED_HEADER),
    )
    .map((e) => e.name)
    .sort();
}

beforeAll(async () => {
  const tsx = join(repoRoot, "node_modules/tsx/dist/cli.mjs");
  await execFileAsync(process.execPath, [tsx, join(repoRoot, "hack/gen-crds.ts"), "--out", out], {
    cwd: repoRoot,
  });
}, 120_000);

afterAll(() => {
  rmSync(out, { recursive: true, force: true });
});

describe("generated API files are up to date (run `npm run gen:crds`)", () => {
  it.each(dirs)("%s holds exactly the generated files", (dir) => {
    const expected = generatedFiles(out, dir);
    expect(expected.length).toBeGreaterThan(0);
    expect(generatedFiles(repoRoot, dir)).toEqual(expected);
    for (const file of expected) {
      const committed = readFileSync(join(repoRoot, dir, file), "utf8");
      expect(committed, `${dir}/${file} differs from its regenerated version`).toBe(
        readFileSync(join(out, dir, file), "utf8"),
      );
    }
  });

  it("docs/api.md matches the schema descriptions and samples", () => {
    expect(readFileSync(join(repoRoot, "docs/api.md"), "utf8")).toBe(
      readFileSync(join(out, "docs/api.md"), "utf8"),
    );
  });

  it("every CRD file starts with the generated header", () => {
    for (const file of generatedFiles(repoRoot, "crds")) {
      expect(readFileSync(join(repoRoot, "crds", file), "utf8").startsWith(`# ${GENERATED_HEADER}\n`)).toBe(
        true,
      );
    }
  });
});

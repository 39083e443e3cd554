/**
 * Generates, from the schema sources in operator/api:
 *   crds/<plural>.turnpike.dev.yaml      CustomResourceDefinitions
 *   operator/api/generated/*.ts          TypeScript types (kubernetes-fluent-client's `crd` generator)
 *   docs/api.md                          the user reference
 *
 * Usage: npx tsx hack/gen-crds.ts [--out <dir>]   (npm run gen:crds; default output: the repo root)
 * test/api/drift.test.ts runs it with --out <temp dir> and fails when the committed files differ.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { format, resolveConfig } from "prettier";

import type { CustomResourceDefinition } from "../operator/api/common.schema.js";
import { crds } from "../operator/api/crds.js";
import { apiIntro, inferenceModelGuide, pipelineGuide, tenantQuotaGuide } from "../operator/api/guide.js";
import { httpErrorsGuide } from "../operator/api/http-errors-guide.js";
import { crdFileName, GENERATED_HEADER, renderApiDoc, renderCrdYaml } from "../operator/api/render.js";
import { httpApiGuide } from "../runtime/gateway/oip/http-guide.js";
import { tenantApiGuide } from "../runtime/gateway/tenant/tenant-api-guide.js";

const execFileAsync = promisify(execFile);
const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The sample each kind's reference section shows as its complete example. */
const guides: Record<string, { guide: string; sample: string }> = {
  InferenceModel: { guide: inferenceModelGuide, sample: "samples/inference-model-ocr-cpu.yaml" },
  TenantQuota: { guide: tenantQuotaGuide, sample: "samples/tenant-quota-free.yaml" },
  Pipeline: { guide: pipelineGuide, sample: "samples/pipeline-ocr.yaml" },
};

function parseArgs(argv: string[]): { out: string } {
  let out = repoRoot;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--out" && argv[i + 1]) out = resolve(argv[++i] as string);
    else throw new Error(`usage: npx tsx hack/gen-crds.ts [--out <dir>] (unexpected argument ${arg})`);
  }
  return { out };
}

/** Removes what an earlier run wrote into dir (files carrying the header), so renamed kinds leave nothing behind. */
function removeGenerated(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isFile() && readFileSync(path, "utf8").slice(0, 200).includes(GENERATED_HEADER)) rmSync(path);
  }
}

/** Runs `kubernetes-fluent-client crd <yaml> <dir>` and returns the files it wrote. */
async function generateTypes(crdYamlPath: string): Promise<Map<string, string>> {
  const cli = join(dirname(createRequire(import.meta.url).resolve("kubernetes-fluent-client")), "cli.js");
  const scratch = mkdtempSync(join(tmpdir(), "turnpike-kfc-"));
  try {
    const { stdout } = await execFileAsync(process.execPath, [cli, "crd", crdYamlPath, scratch]);
    const files = readdirSync(scratch).filter((f) => f.endsWith(".ts"));
    if (files.length === 0) throw new Error(`kubernetes-fluent-client wrote no types:\n${stdout}`);
    return new Map(files.map((f) => [f, readFileSync(join(scratch, f), "utf8")]));
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

function kindDocs(allCrds: CustomResourceDefinition[]) {
  return allCrds.map((crd) => {
    const entry = guides[crd.spec.names.kind];
    if (!entry) throw new Error(`no guide for ${crd.spec.names.kind} in hack/gen-crds.ts`);
    const yaml = readFileSync(join(repoRoot, entry.sample), "utf8");
    return { crd, guide: entry.guide, example: { path: entry.sample, yaml } };
  });
}

async function main(): Promise<void> {
  const { out } = parseArgs(process.argv.slice(2));
  const crdDir = join(out, "crds");
  const typesDir = join(out, "operator/api/generated");
  removeGenerated(crdDir);
  removeGenerated(typesDir);

  for (const crd of crds) {
    const yamlPath = join(crdDir, crdFileName(crd));
    writeFileSync(yamlPath, renderCrdYaml(crd));
    for (const [file, source] of await generateTypes(yamlPath)) {
      writeFileSync(join(typesDir, file), `// ${GENERATED_HEADER}\n${source.trimEnd()}\n`);
    }
  }

  mkdirSync(join(out, "docs"), { recursive: true });
  // Formatted like every other Markdown file in the repo, so `prettier --check .` passes on it.
  const docPath = join(repoRoot, "docs/api.md");
  const markdown = renderApiDoc(
    apiIntro,
    kindDocs(crds),
    `${httpApiGuide()}\n${tenantApiGuide()}\n${httpErrorsGuide}`,
  );
  const options = { ...(await resolveConfig(docPath)), filepath: docPath };
  writeFileSync(join(out, "docs/api.md"), await format(markdown, options));
  console.log(`generated ${crds.length} CRDs, their types and docs/api.md under ${out}`);
}

await main();

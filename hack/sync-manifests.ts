/**
 * The copies that packaging needs of files kept elsewhere. Helm reads only files inside its chart
 * and kustomize only files below its root, so the chart and the kustomize base carry copies of the
 * CRDs (crds/ and Pepr's store CRD), the operator's RBAC rules (config/operator/rbac.yaml) and the
 * observability files (config/observability/). Each copy says where it comes from; drift.test.ts
 * fails when one is stale.
 *
 * Usage: npm run gen:packaging   (npx tsx hack/sync-manifests.ts)
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import yaml from "js-yaml";

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** First words of the header every copy carries (JSON copies cannot: they are listed in COPY_DIRS only). */
export const COPY_HEADER = "Copied by `npm run gen:packaging` from";

/** Directories that hold only copies (stale ones are removed on write). */
export const COPY_DIRS = ["config/kustomize/crds", "config/helm/turnpike/crds", "config/helm/turnpike/files"];

const header = (source: string) => `# ${COPY_HEADER} ${source}; edit the source, not this copy.\n`;

/** Every copy, by repository-relative path, as it should be on disk. */
export function packagingCopies(root: string = repoRoot): Map<string, string> {
  const copies = new Map<string, string>();
  const read = (path: string) => readFileSync(join(root, path), "utf8");

  const crdFiles = readdirSync(join(root, "crds"))
    .filter((f) => f.endsWith(".yaml"))
    .sort();
  for (const file of crdFiles) {
    const text = header(`crds/${file}`) + read(`crds/${file}`);
    copies.set(`config/kustomize/crds/${file}`, text);
    copies.set(`config/helm/turnpike/crds/${file}`, text);
  }
  copies.set(
    "config/kustomize/crds/kustomization.yaml",
    header("the file list of crds/") +
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" +
      crdFiles.map((f) => `  - ${f}\n`).join(""),
  );

  // Pepr's store CRD: config/operator/pepr-store.yaml also holds the pepr-system Namespace, which
  // the chart renders as a template instead (Helm's crds/ is for CRDs only).
  const peprDocs = read("config/operator/pepr-store.yaml").split(/^---[ \t]*$/m);
  const peprCrd = peprDocs.find((doc) => /^kind:\s*CustomResourceDefinition\s*$/m.test(doc));
  if (!peprCrd) throw new Error("config/operator/pepr-store.yaml has no CustomResourceDefinition");
  copies.set(
    "config/helm/turnpike/crds/peprstores.pepr.dev.yaml",
    header("config/operator/pepr-store.yaml") + `${peprCrd.trim()}\n`,
  );

  // The operator's RBAC rules by role name; the chart's templates/operator-rbac.yaml reads them.
  const rules: Record<string, unknown> = {};
  for (const doc of yaml.loadAll(read("config/operator/rbac.yaml")) as Record<string, unknown>[]) {
    if (doc?.kind !== "ClusterRole" && doc?.kind !== "Role") continue;
    const name = (doc.metadata as { name: string }).name;
    rules[name] = doc.rules;
  }
  copies.set(
    "config/helm/turnpike/files/operator-rbac.yaml",
    header("config/operator/rbac.yaml (rules by role name)") + yaml.dump(rules, { lineWidth: -1 }),
  );

  copies.set(
    "config/helm/turnpike/files/grafana-dashboard.json",
    read("config/observability/grafana-dashboard.json"),
  );
  copies.set(
    "config/helm/turnpike/files/prometheus-rules.yaml",
    header("config/observability/prometheus-rules.yaml") + read("config/observability/prometheus-rules.yaml"),
  );
  return copies;
}

/** Files in the copy directories that are not (or no longer) copies. */
export function staleCopies(root: string, copies: Map<string, string>): string[] {
  const stale: string[] = [];
  for (const dir of COPY_DIRS) {
    if (!existsSync(join(root, dir))) continue;
    for (const file of readdirSync(join(root, dir))) {
      const path = `${dir}/${file}`;
      if (!copies.has(path)) stale.push(path);
    }
  }
  return stale.sort();
}

/** Writes every copy and removes stale ones; returns the paths it changed. */
export function writePackagingCopies(root: string = repoRoot): string[] {
  const copies = packagingCopies(root);
  const changed: string[] = [];
  for (const path of staleCopies(root, copies)) {
    rmSync(join(root, path));
    changed.push(path);
  }
  for (const [path, text] of copies) {
    const target = join(root, path);
    if (existsSync(target) && readFileSync(target, "utf8") === text) continue;
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
    changed.push(path);
  }
  return changed;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const changed = writePackagingCopies();
  console.log(changed.length ? `updated ${changed.join(", ")}` : "packaging copies are up to date");
}

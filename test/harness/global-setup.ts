/**
 * Vitest global setup: starts the real services and one throwaway control plane per run, installs
 * crds/, and hands the kubeconfig to every test file through `provide` (see setup-env.ts).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { installCrds, kedaCrdDir, startControlPlane, type ControlPlane } from "../../hack/control-plane.js";
import { deleteRunLeftovers } from "./run-names.js";
import { ensureServices, serviceUrls } from "./services.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    kubeBinDir: string;
    auditLog: string;
    runNamesFile: string;
  }
}

let plane: ControlPlane | undefined;

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started = Date.now();
  await ensureServices();
  plane = await startControlPlane({ verbose: true });
  process.env.KUBECONFIG = plane.kubeconfig;
  await installCrds(plane.kubeconfig, plane.binDir);
  // KEDA's own CRDs, from its Go module, so ScaledObjects meet KEDA's real schema.
  await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
  process.stderr.write(
    `[harness] services and control plane ${plane.server} ready in ${Date.now() - started} ms\n`,
  );
  project.provide("kubeconfig", plane.kubeconfig);
  project.provide("kubeBinDir", plane.binDir);
  project.provide("auditLog", plane.auditLog);
  const namesDir = mkdtempSync(join(tmpdir(), "turnpike-run-names-"));
  const runNamesFile = join(namesDir, "names");
  project.provide("runNamesFile", runNamesFile);
  return async () => {
    await plane?.stop();
    // After every file: what a test's own clean-up missed would otherwise stay in the broker for good.
    const deleted = await deleteRunLeftovers(runNamesFile, serviceUrls()).catch(() => 0);
    if (deleted > 0) process.stderr.write(`[harness] deleted ${deleted} broker objects the tests left\n`);
    rmSync(namesDir, { recursive: true, force: true });
  };
}

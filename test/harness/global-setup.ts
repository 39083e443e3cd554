/**
 * Vitest global setup: starts the real services and one throwaway control plane per run, installs
 * crds/, and hands the kubeconfig to every test file through `provide` (see setup-env.ts).
 */
import type { TestProject } from "vitest/node";
import { installCrds, kedaCrdDir, startControlPlane, type ControlPlane } from "../../hack/control-plane.js";
import { ensureServices } from "./services.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfig: string;
    kubeBinDir: string;
    auditLog: string;
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
  return async () => {
    await plane?.stop();
  };
}

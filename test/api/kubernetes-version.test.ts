/**
 * One minimum Kubernetes version (operator/api/kubernetes-version.ts), and it is the true one: the
 * README, the chart's kubeVersion and docs/api.md say it, and kube-apiserver emulating it accepts
 * every CRD while emulating the minor before refuses one (so a CEL feature newer than the minimum,
 * or a minimum set too high, fails here). Emulation (`--emulated-version`) gates the CEL libraries
 * of new rules exactly as that version does; the binary emulates down to three minors below its own.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import yaml from "js-yaml";
import { describe, expect, it } from "vitest";
import { installCrds, startControlPlane } from "../../hack/control-plane.js";
import { MIN_KUBERNETES_VERSION } from "../../operator/api/kubernetes-version.js";
import { repoRoot } from "../harness/kube.js";

const read = (path: string) => readFileSync(join(repoRoot, path), "utf8");
const [major, minor] = MIN_KUBERNETES_VERSION.split(".").map(Number) as [number, number];
const previous = `${major}.${minor - 1}`;

/** Installs the CRDs on a fresh apiserver emulating `version`; the refusal's text, or undefined. */
async function installOn(version: string): Promise<string | undefined> {
  const plane = await startControlPlane({ emulatedVersion: version });
  try {
    await installCrds(plane.kubeconfig, plane.binDir);
    return undefined;
  } catch (error) {
    return String((error as { stderr?: string }).stderr ?? error);
  } finally {
    await plane.stop();
  }
}

describe(`minimum Kubernetes version ${MIN_KUBERNETES_VERSION}`, () => {
  it("is the one the README, the chart and docs/api.md state", () => {
    const statedIn = {
      readme: [...read("README.md").matchAll(/Kubernetes \((\d+\.\d+) or newer\)/g)].map((m) => m[1]),
      chart: [(yaml.load(read("config/helm/turnpike/Chart.yaml")) as { kubeVersion: string }).kubeVersion],
      apiDoc: [...read("docs/api.md").matchAll(/need Kubernetes (\d+\.\d+) or newer/g)].map((m) => m[1]),
    };
    expect(statedIn).toEqual({
      readme: [MIN_KUBERNETES_VERSION],
      chart: [`>=${MIN_KUBERNETES_VERSION}.0-0`],
      apiDoc: [MIN_KUBERNETES_VERSION],
    });
  });

  it("installs every CRD, and the minor before refuses one", { timeout: 600_000 }, async () => {
    expect(await installOn(MIN_KUBERNETES_VERSION)).toBeUndefined();
    const refusal = await installOn(previous);
    expect(refusal).toMatch(/CustomResourceDefinition "[a-z.]+" is invalid/);
    expect(refusal).toMatch(/compilation failed/);
  });
});

/**
 * config/admission/finalizer-policy.yaml does what it says on a real kube-apiserver with
 * MutatingAdmissionPolicy turned on: every new InferenceModel gets the operator's finalizer at
 * creation, exactly once, next to any finalizer its author set. The operator then has no finalizer
 * patch to make (it skips the patch when the finalizer is there, see operator/inference-model).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import yaml from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCrds, startControlPlane, type ControlPlane } from "../../hack/control-plane.js";
import { FINALIZER } from "../../operator/shared/labels.js";
import { repoRoot } from "../harness/kube.js";

const SAMPLE = join(repoRoot, "samples/inference-model-ocr-cpu.yaml");

describe("the optional finalizer admission policy", () => {
  let plane: ControlPlane;
  let scratch: string;
  const kubectl = (...args: string[]) =>
    execFileSync(join(plane.binDir, "kubectl"), [`--kubeconfig=${plane.kubeconfig}`, ...args], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
  /** Creates the sample model as `name` with `finalizers` and returns the finalizers it was stored with. */
  const create = (name: string, finalizers?: string[], dryRun = false): string[] => {
    const model = yaml.load(readFileSync(SAMPLE, "utf8")) as { metadata: Record<string, unknown> };
    model.metadata.name = name;
    if (finalizers) model.metadata.finalizers = finalizers;
    const file = join(scratch, `${name}.yaml`);
    writeFileSync(file, yaml.dump(model));
    const out = kubectl(
      "create",
      "-n",
      "default",
      "-o",
      "json",
      ...(dryRun ? ["--dry-run=server"] : []),
      "-f",
      file,
    );
    return (JSON.parse(out) as { metadata: { finalizers?: string[] } }).metadata.finalizers ?? [];
  };

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), "finalizer-policy-"));
    plane = await startControlPlane({
      apiserverArgs: [
        "--feature-gates=MutatingAdmissionPolicy=true",
        "--runtime-config=admissionregistration.k8s.io/v1beta1=true",
      ],
    });
    await installCrds(plane.kubeconfig, plane.binDir);
    kubectl("apply", "--server-side", "-f", join(repoRoot, "config/admission/finalizer-policy.yaml"));
    // The policy takes effect once the apiserver's own informer has it (and the CRD is served):
    // wait for a dry run to show it.
    const inEffect = () => {
      try {
        return create("probe", undefined, true).includes(FINALIZER);
      } catch {
        return false;
      }
    };
    for (let tries = 0; !inEffect(); tries++) {
      if (tries > 100) throw new Error("the finalizer policy never took effect");
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 600_000);

  afterAll(async () => {
    await plane?.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it("adds the operator's finalizer to a new model", () => {
    expect(create("plain")).toEqual([FINALIZER]);
  });

  it("keeps the author's own finalizers and never adds it twice", () => {
    expect(create("own", ["example.com/keep"]).sort()).toEqual([FINALIZER, "example.com/keep"].sort());
    expect(create("already", [FINALIZER])).toEqual([FINALIZER]);
  });

  it("leaves an update alone: a finalizer removed later stays removed", () => {
    kubectl(
      "patch",
      "inferencemodel",
      "plain",
      "-n",
      "default",
      "--type=merge",
      "-p",
      '{"metadata":{"finalizers":null}}',
    );
    const stored = JSON.parse(kubectl("get", "inferencemodel", "plain", "-n", "default", "-o", "json")) as {
      metadata: { finalizers?: string[] };
    };
    expect(stored.metadata.finalizers ?? []).toEqual([]);
  });
});

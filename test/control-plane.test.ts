/**
 * Proves the harness runs a real kube-apiserver: schema and CEL validation refuse bad objects,
 * server-side apply is idempotent, RBAC is enforced.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeConfig } from "@kubernetes/client-node";
import { K8s, kind } from "kubernetes-fluent-client";
import { join } from "node:path";
import * as kube from "./harness/kube.js";
import { uniqueName } from "./harness/services.js";

const ns = uniqueName("cp");

beforeAll(async () => {
  await kube.kubectlOk([
    "apply",
    "--server-side",
    "-f",
    join(kube.repoRoot, "test/fixtures/widgets.crd.yaml"),
  ]);
  await kube.kubectlOk(["wait", "--for=condition=Established", "crd/widgets.smoke.turnpike.dev"]);
  await kube.createNamespace(ns);
});
afterAll(() => kube.deleteNamespace(ns));

describe("real control plane", () => {
  it("serves the version it was built as", async () => {
    const version = JSON.parse(await kube.kubectlOk(["version", "-o", "json"]));
    expect(version.serverVersion.gitVersion).toMatch(/^v1\.34\./);
  });

  it("refuses a custom resource that breaks its schema or CEL rule", async () => {
    const widget = (size: number | string) =>
      JSON.stringify({
        apiVersion: "smoke.turnpike.dev/v1",
        kind: "Widget",
        metadata: { name: uniqueName("w"), namespace: ns },
        spec: { size },
      });
    const tooBig = await kube.kubectl(["create", "-f", "-"], widget(11));
    expect(tooBig.code).not.toBe(0);
    expect(tooBig.stderr).toContain(
      "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
    );
    const unlucky = await kube.kubectl(["create", "-f", "-"], widget(7));
    expect(unlucky.stderr).toContain("size 7 is unlucky");
    const wrongType = await kube.kubectl(["create", "-f", "-"], widget("three"));
    expect(wrongType.stderr).toMatch(
      /spec\.size: Invalid value: "string": spec\.size in body must be of type integer/,
    );
    const fine = await kube.kubectl(["create", "-f", "-"], widget(3));
    expect(fine.code).toBe(0);
  });

  it("server-side apply of the same Deployment twice keeps generation 1", async () => {
    const deployment = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "ssa-twice", namespace: ns, labels: { app: "ssa-twice" } },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: "ssa-twice" } },
        template: {
          metadata: { labels: { app: "ssa-twice" } },
          spec: { containers: [{ name: "main", image: "registry.invalid/none:1" }] },
        },
      },
    };
    const first = await K8s(kind.Deployment).Apply(deployment, { force: true });
    const second = await K8s(kind.Deployment).Apply(deployment, { force: true });
    expect(first.metadata?.generation).toBe(1);
    expect(second.metadata?.generation).toBe(1);
    expect(second.metadata?.managedFields?.map((f) => f.manager)).toContain("pepr");
  });

  it("enforces RBAC for identities other than the admin", async () => {
    const config = new KubeConfig();
    config.loadFromFile(process.env.KUBECONFIG!);
    const denied = await kube.kubectl([
      "auth",
      "can-i",
      "list",
      "secrets",
      "--as",
      "system:serviceaccount:x:nobody",
    ]);
    expect(denied.stdout.trim()).toBe("no");
    const admin = await kube.kubectl(["auth", "can-i", "list", "secrets"]);
    expect(admin.stdout.trim()).toBe("yes");
    expect(config.getCurrentCluster()?.caData).toBeTruthy();
  });
});

describe("audit log", () => {
  it("records each write with its user, so tests can count an operator's writes", async () => {
    const mark = kube.auditMark();
    await kube.kubectlOk(["create", "configmap", "audited", "-n", ns, "--from-literal=a=b"]);
    await kube.kubectlOk(["get", "configmap", "audited", "-n", ns]);
    // Other test files write at the same time: look at this test's namespace only.
    const writes = kube.writesSince(mark, "turnpike-admin").filter((w) => w.namespace === ns);
    expect(writes).toEqual([
      expect.objectContaining({ verb: "create", resource: "configmaps", namespace: ns, name: "audited" }),
    ]);
  });
});

/** The metadata-only Secret watch against the real apiserver: readers are enqueued, others not. */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { logger } from "../../runtime/shared/logger.js";
import { SecretIndex } from "../../operator/tenant-quota/secret-index.js";
import { watchApiKeySecrets, type SecretWatch } from "../../operator/tenant-quota/secret-watch.js";
import { createNamespace, deleteNamespace, kubectlOk } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";
import { eventually } from "./helpers/operator-process.js";

describe("Secret watch", () => {
  let namespace: string;
  let watch: SecretWatch;
  const index = new SecretIndex();
  const enqueued: string[] = [];

  beforeAll(async () => {
    namespace = await createNamespace(uniqueName("secrets"));
    index.set(namespace, "acme", ["acme-keys", "shared"]);
    index.set(namespace, "other", ["shared"]);
    watch = await watchApiKeySecrets(
      index,
      (ns, quota) => enqueued.push(`${ns}/${quota}`),
      [namespace],
      logger("test"),
    );
  });

  afterAll(async () => {
    watch?.close();
    if (namespace) await deleteNamespace(namespace);
  });

  const seen = (quota: string) => async () => (enqueued.includes(`${namespace}/${quota}`) ? true : undefined);

  it("enqueues the TenantQuotas that read a Secret when it is created, changed or deleted", async () => {
    await kubectlOk(["create", "secret", "generic", "unrelated", "-n", namespace, "--from-literal=k=v"]);
    await kubectlOk([
      "create",
      "secret",
      "generic",
      "acme-keys",
      "-n",
      namespace,
      "--from-literal=apiKey=one",
    ]);
    await eventually("created", seen("acme"), 10_000);
    expect(enqueued).toEqual([`${namespace}/acme`]);

    enqueued.length = 0;
    await kubectlOk(["create", "secret", "generic", "shared", "-n", namespace, "--from-literal=apiKey=two"]);
    await eventually("shared", async () => (enqueued.length === 2 ? true : undefined), 10_000);
    expect(enqueued.sort()).toEqual([`${namespace}/acme`, `${namespace}/other`]);

    enqueued.length = 0;
    const patch = { data: { apiKey: Buffer.from("three").toString("base64") } };
    await kubectlOk([
      "patch",
      "secret",
      "acme-keys",
      "-n",
      namespace,
      "--type=merge",
      "-p",
      JSON.stringify(patch),
    ]);
    await eventually("changed", seen("acme"), 10_000);

    enqueued.length = 0;
    await kubectlOk(["delete", "secret", "acme-keys", "-n", namespace]);
    await eventually("deleted", seen("acme"), 10_000);

    enqueued.length = 0;
    await kubectlOk([
      "patch",
      "secret",
      "unrelated",
      "-n",
      namespace,
      "--type=merge",
      "-p",
      '{"data":{"k":"dw=="}}',
    ]);
    await new Promise((r) => setTimeout(r, 500));
    expect(enqueued).toEqual([]);
  });

  it("forgets a TenantQuota that no longer reads the Secret", async () => {
    index.forget(namespace, "other");
    expect(index.quotasReading(namespace, "shared")).toEqual(["acme"]);
    index.set(namespace, "acme", ["elsewhere"]);
    expect(index.quotasReading(namespace, "shared")).toEqual([]);
    expect(index.quotasReading(namespace, "elsewhere")).toEqual(["acme"]);
  });
});

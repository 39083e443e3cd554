/**
 * The operator's deployable identity: config/operator/rbac.yaml has no wildcards, and the real
 * operator process, authenticated as the turnpike-operator ServiceAccount (a token minted with the
 * TokenRequest API, not system:masters), reconciles every sample end to end with no request
 * refused. The resync is set to 10 minutes, so everything after start-up is driven by the watches
 * (Pepr's and the Secret watch): a missing list/watch permission fails the test too.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadAll } from "js-yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensurePeprPrerequisites, PEPR_NAMESPACE, peprStoreCrd } from "../../operator/bootstrap.js";
import { logger } from "../../runtime/shared/logger.js";
import { names, tenantKeys, RUNTIME_CONFIG_KEY } from "../../runtime/shared/contracts/index.js";
import { hashApiKey } from "../../runtime/shared/quota/index.js";
import { Redis } from "ioredis";
import {
  auditMark,
  createNamespace,
  deleteNamespace,
  kubectl,
  kubectlOk,
  repoRoot,
  writesSince,
} from "../harness/kube.js";
import { rabbitManagementUrl, serviceUrls, uniqueName } from "../harness/services.js";
import {
  conditionOf,
  createRuntimeSecret,
  deleteNamespaceQueues,
  eventually,
  forbiddenSince,
  getJson,
  installOperatorRbac,
  markDeploymentAvailable,
  serviceAccountKubeconfig,
  startOperator,
  type OperatorProcess,
} from "./helpers/operator-process.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = Record<string, any>;
const configDir = join(repoRoot, "config/operator");
const docs = (file: string) => loadAll(readFileSync(join(configDir, file), "utf8")) as Doc[];
const API_KEYS = [
  "tp_free_3b7e1c9a5d2f4e6a8b0c1d2e3f4a5b6c",
  "tp_live_9f8e7d6c5b4a39281706f5e4d3c2b1a0",
  "tp_live_0a1b2c3d4e5f60718293a4b5c6d7e8f9",
];
/** The InferenceModels of samples/ with the replicas this test plays for each. */
const SAMPLE_MODELS = [
  ["ocr-rec", 1],
  ["ocr-rec-gpu", 1],
  ["ocr-det", 0],
  ["smollm2", 1],
] as const;
const ROTATED = "tp_live_rotated_bbbbbbbbbbbbbbbbbbbbbbbb";

describe("config/operator manifests", () => {
  it("grant no wildcard verb, resource or group, and nothing that escalates", () => {
    const roles = docs("rbac.yaml").filter((d) => d.kind === "ClusterRole" || d.kind === "Role");
    expect(roles.map((r) => `${r.kind}/${r.metadata.name}`)).toEqual([
      "ClusterRole/turnpike-operator",
      "Role/turnpike-operator-pepr-store",
    ]);
    for (const rule of roles.flatMap((r) => r.rules as Doc[])) {
      expect(rule.verbs).not.toContain("*");
      expect(rule.resources).not.toContain("*");
      expect(rule.apiGroups).not.toContain("*");
      expect(rule.nonResourceURLs).toBeUndefined();
      for (const verb of ["escalate", "bind", "impersonate", "deletecollection", "update"]) {
        if (verb === "update" && rule.resources.every((r: string) => r.endsWith("/finalizers"))) continue;
        expect(rule.verbs, `${rule.resources} ${verb}`).not.toContain(verb);
      }
    }
    const secrets = roles[0]!.rules.find((r: Doc) => r.resources.includes("secrets"));
    expect(secrets.verbs).toEqual(["get", "list", "watch"]);
    const bindings = docs("rbac.yaml").filter((d) => d.kind.endsWith("Binding"));
    for (const binding of bindings) {
      expect(binding.subjects).toEqual([
        { kind: "ServiceAccount", name: "turnpike-operator", namespace: "turnpike-system" },
      ]);
    }
  });

  it("ship Pepr's store CRD exactly as the operator's bootstrap makes it", async () => {
    const crd = docs("pepr-store.yaml").find((d) => d.kind === "CustomResourceDefinition");
    expect(crd).toEqual(peprStoreCrd);
    // Installed, the bootstrap only reads them.
    await installOperatorRbac();
    const before = auditMark();
    await ensurePeprPrerequisites(logger("test"));
    // Only the bootstrap's own objects: other test files write namespaces meanwhile, as the same user.
    const mine = new Set([
      `namespaces/${PEPR_NAMESPACE}`,
      `customresourcedefinitions/${peprStoreCrd.metadata.name}`,
    ]);
    expect(writesSince(before, "turnpike-admin").filter((w) => mine.has(`${w.resource}/${w.name}`))).toEqual(
      [],
    );
  });

  it("run the operator non-root on a read-only root filesystem, with probes, resources and a Secret", async () => {
    const [deployment] = docs("deployment.yaml");
    const pod = deployment!.spec.template.spec;
    const container = pod.containers[0];
    expect(pod.serviceAccountName).toBe("turnpike-operator");
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(container.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"] },
    });
    expect(container.readinessProbe.httpGet).toMatchObject({ path: "/healthz", scheme: "HTTPS" });
    expect(container.livenessProbe.httpGet).toMatchObject({ path: "/healthz", scheme: "HTTPS" });
    expect(container.resources.requests).toBeDefined();
    expect(container.resources.limits.memory).toBeDefined();
    expect(container.envFrom).toEqual([{ secretRef: { name: "turnpike-operator" } }]);
    // The apiserver accepts every manifest (schema-checked server-side, nothing persisted).
    await installOperatorRbac();
    await kubectlOk(["apply", "--dry-run=server", "-f", join(configDir, "deployment.yaml")]);
  });
});

describe("the operator as its ServiceAccount", () => {
  let namespace: string;
  let operator: OperatorProcess;
  let user: string;
  let mark: number;
  const redis = new Redis(serviceUrls().redisUrl);

  beforeAll(async () => {
    await installOperatorRbac();
    const identity = await serviceAccountKubeconfig();
    user = identity.user;
    namespace = await createNamespace(uniqueName("rbac"));
    await createRuntimeSecret(namespace);
    mark = auditMark();
    operator = await startOperator({
      kubeconfig: identity.path,
      namespaces: [namespace],
      resyncSeconds: 600,
    });
    await operator.healthy();
  }, 120_000);

  afterAll(async () => {
    await operator?.stop();
    if (namespace) {
      const keys = await redis.keys(`tp:*${namespace}*`);
      if (keys.length > 0) await redis.del(...keys);
      await deleteNamespaceQueues(namespace);
      await deleteNamespace(namespace);
    }
    redis.disconnect();
  });

  const get = (resource: string, name: string) => getJson(namespace, resource, name);
  /** Points the `ocr` Pipeline's second step at another model. */
  const patchPipelineModel = (model: string) =>
    kubectlOk([
      ...["patch", "pipelines.turnpike.dev", "ocr", "-n", namespace, "--type=json", "-p"],
      JSON.stringify([{ op: "replace", path: "/spec/steps/1/model", value: model }]),
    ]);
  const ready = async (resource: string, name: string) =>
    conditionOf(await get(resource, name))?.status === "True" ? true : undefined;

  it("reconciles every sample, reacts to changes and cleans up, with no request refused", async () => {
    await kubectlOk(["apply", "-n", namespace, "-f", join(repoRoot, "samples")]);

    // TenantQuotas: keys and limits in Redis, Ready.
    await eventually("TenantQuotas Ready", async () =>
      (await ready("tenantquota", "acme")) && (await ready("tenantquota", "hobbyist")) ? true : undefined,
    );
    expect(await redis.hget(names(namespace).apiKeyIndex, hashApiKey(API_KEYS[1]!))).toBe("acme");
    expect(await redis.hget(tenantKeys(namespace, "hobbyist").limits, "tokensPerDay")).toBe("10000");

    // InferenceModels: children exist; play the Deployment controller; the models turn Ready.
    for (const [model, replicas] of SAMPLE_MODELS) {
      await eventually(`Deployment ${model}`, () => get("deployment", model));
      await markDeploymentAvailable(namespace, model, replicas);
    }
    for (const [model] of SAMPLE_MODELS) {
      await eventually(`InferenceModel ${model} Ready`, () => ready("inferencemodel", model), 60_000);
      // No Prometheus Operator here: no ServiceMonitor, so no worker Service either.
      expect((await kubectl(["get", "service", model, "-n", namespace])).code).not.toBe(0);
      expect(await get("scaledobject", model)).toBeDefined();
    }

    // The Pipeline follows its models' readiness.
    await eventually("Pipeline Ready", () => ready("pipelines.turnpike.dev", "ocr"), 30_000);
    const config = JSON.parse((await get("configmap", "turnpike-runtime")).data[RUNTIME_CONFIG_KEY]);
    expect(config.models.map((m: Doc) => m.name)).toEqual(SAMPLE_MODELS.map(([model]) => model).sort());
    expect(config.pipelines.map((p: Doc) => p.name)).toEqual(["ocr"]);
    expect(config.tenants.map((t: Doc) => t.name)).toEqual(["acme", "hobbyist"]);

    // A rotated key arrives through the Secret watch (the resync is 10 minutes away).
    const rotate = { data: { next: Buffer.from(ROTATED).toString("base64") } };
    await kubectlOk([
      "patch",
      "secret",
      "acme-api-keys",
      "-n",
      namespace,
      "--type=merge",
      "-p",
      JSON.stringify(rotate),
    ]);
    await eventually("rotated key published", async () =>
      (await redis.hget(names(namespace).apiKeyIndex, hashApiKey(ROTATED))) === "acme" ? true : undefined,
    );
    expect(await redis.hget(names(namespace).apiKeyIndex, hashApiKey(API_KEYS[2]!))).toBeNull();

    // A broken reference is a condition, not a crash; fixing it restores Ready.
    await patchPipelineModel("ocr-rec-v2");
    await eventually("ModelNotFound", async () => {
      const condition = conditionOf(await get("pipelines.turnpike.dev", "ocr"));
      return condition?.reason === "ModelNotFound" ? condition : undefined;
    });
    await patchPipelineModel("ocr-rec");
    await eventually("Pipeline Ready again", () => ready("pipelines.turnpike.dev", "ocr"));

    // Deleting everything runs every finalizer: no object, Redis tenant or model queue is left.
    await kubectlOk(["delete", "-n", namespace, "-f", join(repoRoot, "samples"), "--wait=false"]);
    await eventually(
      "every Turnpike object gone",
      async () => {
        const left = await kubectl(["get", "turnpike", "-n", namespace, "-o", "name"]);
        return left.code === 0 && left.stdout.trim() === "" ? true : undefined;
      },
      60_000,
    );
    await eventually("runtime ConfigMap gone", async () =>
      (await get("configmap", "turnpike-runtime")) === undefined ? true : undefined,
    );
    expect(
      await redis.exists(tenantKeys(namespace, "acme").limits, tenantKeys(namespace, "hobbyist").limits),
    ).toBe(0);
    expect(await redis.hlen(names(namespace).apiKeyIndex)).toBe(0);
    const management = new URL(rabbitManagementUrl());
    const auth = `Basic ${Buffer.from(`${decodeURIComponent(management.username)}:${decodeURIComponent(management.password)}`).toString("base64")}`;
    for (const [model] of SAMPLE_MODELS) {
      const queue = encodeURIComponent(names(namespace).modelQueue(model));
      const response = await fetch(
        `${serviceUrls().rabbitManagementUrl.replace(/\/$/, "")}/api/queues/%2F/${queue}`,
        {
          headers: { authorization: auth },
        },
      );
      expect(response.status, `queue of ${model}`).toBe(404);
    }

    // It really ran as the ServiceAccount (the test itself only played the Deployment
    // controller as admin); nothing was refused, nothing leaked.
    const statusWrites = writesSince(mark, user).filter((w) => w.subresource === "status");
    expect(new Set(statusWrites.map((w) => w.resource))).toEqual(
      new Set(["inferencemodels", "tenantquotas", "pipelines"]),
    );
    const adminStatusWrites = writesSince(mark, "turnpike-admin").filter(
      (w) => w.namespace === namespace && w.subresource === "status",
    );
    expect(new Set(adminStatusWrites.map((w) => w.resource))).toEqual(new Set(["deployments"]));
    expect(forbiddenSince(mark, user)).toEqual([]);
    const output = operator.output();
    expect(output).not.toMatch(/forbidden|HTTP 403/i);
    for (const key of [...API_KEYS, ROTATED]) expect(output).not.toContain(key);
    expect(output).toContain('"namespaces":["' + namespace + '"]');
  }, 240_000);
});

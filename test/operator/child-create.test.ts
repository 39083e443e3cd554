/**
 * A child created by the operator whose hand-over to the apply lost its race (child-create.ts):
 * against the real kube-apiserver, the create's managed-fields entry left next to the apply's
 * keeps a field the desired state dropped, until a later pass over the unchanged child repairs it
 * (seen in the watch cache, which keeps no field sets; written from a GET); the next apply then
 * prunes that field.
 */
import type { KubernetesObject } from "@kubernetes/client-node";
import type { GenericKind } from "kubernetes-fluent-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { childClient } from "../../operator/shared/child-reader.js";
import { applyChildren, CHILD_KINDS, withDesiredHash } from "../../operator/shared/children.js";
import { MANAGED_BY_TURNPIKE, WatchCache } from "../../operator/shared/watch-cache.js";
import { logger } from "../../runtime/shared/logger.js";
import { auditMark, createNamespace, deleteNamespace, writesSince } from "../harness/kube.js";
import { eventually } from "./helpers/im-env.js";

const NAME = "created-child";
const OWNER = { "turnpike.dev/owner-kind": "inferencemodel", "turnpike.dev/owner": "m" };
const KIND = CHILD_KINDS.ConfigMap;

let namespace: string;
let cache: WatchCache;

const configMap = (data: Record<string, string>): KubernetesObject & { data: Record<string, string> } => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name: NAME, namespace, labels: { ...MANAGED_BY_TURNPIKE, ...OWNER } },
  data,
});

const apply = (data: Record<string, string>) =>
  applyChildren(namespace, [configMap(data)], OWNER, [KIND], cache);

/** The live child, once the cache shows at least `resourceVersion` of it. */
const cachedAt = (resourceVersion: string) =>
  eventually(async () => {
    const cached = await cache.get(KIND, namespace, NAME);
    return BigInt(cached?.metadata?.resourceVersion ?? "0") >= BigInt(resourceVersion) ? cached : undefined;
  });

const live = async () =>
  (await childClient(KIND).InNamespace(namespace).Get(NAME)) as ReturnType<typeof configMap>;
const peprEntries = async () =>
  ((await live()).metadata?.managedFields ?? []).filter((e) => e.manager === "pepr").map((e) => e.operation);

beforeAll(async () => {
  namespace = await createNamespace(`child-create-${Date.now().toString(36)}`);
  cache = await WatchCache.start([KIND], [namespace], logger("operator"), MANAGED_BY_TURNPIKE);
});

afterAll(async () => {
  await cache?.close();
  if (namespace) await deleteNamespace(namespace);
});

describe("a created child's first change", () => {
  it("hands the create's fields to the apply from the cache's slim entries, so the apply prunes", async () => {
    await eventually(async () => (cache.synced ? true : undefined));
    const name = `${NAME}-first`;
    const renamed = (data: Record<string, string>) => {
      const child = configMap(data);
      return { ...child, metadata: { ...child.metadata, name } };
    };
    const created = await applyChildren(namespace, [renamed({ a: "1", b: "2" })], OWNER, [], cache);
    expect(created.applied).toEqual([`ConfigMap/${name}`]);
    const createdAt = (await childClient(KIND).InNamespace(namespace).Get(name)).metadata!.resourceVersion!;
    await eventually(async () => {
      const cached = await cache.get(KIND, namespace, name);
      return BigInt(cached?.metadata?.resourceVersion ?? "0") >= BigInt(createdAt) ? cached : undefined;
    });

    await applyChildren(namespace, [renamed({ a: "1" })], OWNER, [], cache);
    const changed = await childClient(KIND).InNamespace(namespace).Get(name);
    expect((changed as ReturnType<typeof configMap>).data).toEqual({ a: "1" });
    expect(
      changed.metadata!.managedFields!.filter((e) => e.manager === "pepr").map((e) => e.operation),
    ).toEqual(["Apply"]);
    await childClient(KIND).InNamespace(namespace).Delete(name);
  });
});

describe("a created child whose hand-over lost its race", () => {
  it("is repaired from the cache on a later pass, and the next apply prunes what the create set", async () => {
    await eventually(async () => (cache.synced ? true : undefined));
    expect((await apply({ a: "1", b: "2" })).applied).toEqual([`ConfigMap/${NAME}`]);
    expect(await peprEntries()).toEqual(["Update"]);

    // The race lost: an apply that went ahead without the hand-over, dropping `b`. The create's
    // entry still owns `b`, so the apply cannot prune it.
    const raced = await childClient(KIND).Apply(withDesiredHash(configMap({ a: "1" })) as GenericKind, {
      force: true,
    });
    expect((await live()).data).toEqual({ a: "1", b: "2" });
    expect((await peprEntries()).sort()).toEqual(["Apply", "Update"]);
    // The cache keeps who wrote the child, not the field sets: the repair reads those itself.
    const cached = await cachedAt(raced.metadata!.resourceVersion!);
    expect(cached!.metadata!.managedFields!.map((e) => [e.manager, e.operation, e.fieldsV1])).toEqual(
      expect.arrayContaining([
        ["pepr", "Apply", undefined],
        ["pepr", "Update", undefined],
      ]),
    );

    // The same desired state again: nothing to apply, but the entries are repaired (one write).
    const mark = auditMark();
    expect((await apply({ a: "1" })).unchanged).toEqual([`ConfigMap/${NAME}`]);
    const writes = writesSince(mark).filter((w) => w.namespace === namespace);
    expect(writes.map((w) => `${w.verb} ${w.resource}/${w.name}`)).toEqual([`patch configmaps/${NAME}`]);
    expect(await peprEntries()).toEqual(["Apply"]);
    const repaired = await live();

    // Repaired once: another pass writes nothing, and the apply now owns (and prunes) `b`.
    await cachedAt(repaired.metadata!.resourceVersion!);
    const again = auditMark();
    expect((await apply({ a: "1" })).unchanged).toEqual([`ConfigMap/${NAME}`]);
    expect(writesSince(again).filter((w) => w.namespace === namespace)).toEqual([]);
    await apply({ a: "1", c: "3" });
    expect((await live()).data).toEqual({ a: "1", c: "3" });
    expect(await peprEntries()).toEqual(["Apply"]);
  });
});

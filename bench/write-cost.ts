/**
 * What one write of an InferenceModel's child costs the apiserver and etcd, by request form:
 * server-side apply of an absent object against a plain create (POST), for the operator's worker
 * Deployment and ScaledObject as `desiredChildren` renders them for the sample model. Rounds
 * alternate the forms on one throwaway control plane (each round in a fresh namespace); the CPU is
 * read from /proc around each round. `--model` measures the model's own writes (create, finalizer,
 * status) one after the other; `--status` the forms a status write can take, alternating on the
 * same models (merge patch, the same with the resourceVersion, PUT, server-side apply).
 *
 *   npx tsx bench/write-cost.ts [--objects=300] [--rounds=3] [--model | --status]
 */
import { execFile } from "node:child_process";
import { installCrds, kedaCrdDir, startControlPlane } from "../hack/control-plane.js";
import { desiredChildren } from "../operator/inference-model/desired.js";
import { loadOperatorEnv, settingsFrom } from "../operator/config.js";
import { withDesiredHash } from "../operator/shared/children.js";
import type { InferenceModel } from "../operator/api/index.js";
import type { KubernetesObject } from "@kubernetes/client-node";
import { forEachLimited, KubeClient } from "./lib/kube-client.js";
import { sleep } from "./lib/env.js";
import { GROUP_PATH, sampleModel } from "./lib/operator-driver.js";
import { cpuMs, pidsWithArgument } from "./lib/processes.js";

const arg = (name: string, fallback: number) =>
  Number(process.argv.find((a) => a.startsWith(`--${name}=`))?.split("=")[1] ?? fallback);
const objects = arg("objects", 300);
const rounds = arg("rounds", 3);
const MANAGER = "pepr";
const profiled = process.argv.find((a) => a.startsWith("--profile="))?.split("=")[1];

/** With --profile=<phase prefix>: the apiserver's CPU profile over that phase's first 4 s, to /tmp. */
function profileOf(phase: string): Promise<void> | undefined {
  if (!profiled || !phase.startsWith(profiled)) return undefined;
  const pki = `${plane.stateDir}/pki`;
  const out = `/tmp/apiserver-${phase.split(" ")[0]}.pprof`;
  return new Promise((resolve) => {
    execFile(
      "curl",
      [
        "-s",
        "--cacert",
        `${pki}/ca.crt`,
        "--cert",
        `${pki}/admin.crt`,
        "--key",
        `${pki}/admin.key`,
        "-o",
        out,
        `${plane.server}/debug/pprof/profile?seconds=4`,
      ],
      () => resolve(),
    );
  });
}

const plane = await startControlPlane();
const client = new KubeClient(plane.server, plane.stateDir);
try {
  await installCrds(plane.kubeconfig, plane.binDir);
  await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
  const pids = () => pidsWithArgument(plane.stateDir);
  const cpu = () => pids().reduce((sum, pid) => sum + cpuMs(pid), 0);
  if (process.argv.includes("--model")) await modelWrites(client, cpu);
  else if (process.argv.includes("--status")) await statusWrites(client, cpu);
  else await childWrites(client, cpu);
} finally {
  client.close();
  await plane.stop();
}

/** A Ready model's status as the operator writes it (three conditions), with `message` on each. */
function modelStatus(namespace: string, name: string, message: string, now: string) {
  return {
    observedGeneration: 1,
    replicas: 1,
    queue: { name: `turnpike.${namespace}.${name}`, depth: 0 },
    readyReplicas: 1,
    selector: "app=x",
    endpoint: `/v2/models/${name}/infer`,
    conditions: ["Ready", "Progressing", "Degraded"].map((type) => ({
      type,
      status: type === "Ready" ? "True" : "False",
      reason: type === "Ready" ? "Available" : "AsExpected",
      message,
      lastTransitionTime: now,
      observedGeneration: 1,
    })),
  };
}

/** The model's own writes, each phase measured apart: the create, the finalizer patch, the status patch. */
async function modelWrites(client: KubeClient, cpu: () => number) {
  for (let round = 0; round < rounds; round++) {
    const namespace = `wc-model-${round}`;
    await client.ok("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
    const base = `${GROUP_PATH}/namespaces/${namespace}/inferencemodels`;
    const names = Array.from({ length: objects }, (_, i) => `m${i}`);
    const now = new Date().toISOString();
    const phases: [string, (name: string) => Promise<{ status: number }>][] = [
      ["create", (name) => client.call("POST", `${base}?fieldManager=bench`, sampleModel(name, namespace))],
      [
        "finalizer (JSON patch)",
        (name) =>
          client.call(
            "PATCH",
            `${base}/${name}?fieldManager=${MANAGER}`,
            [{ op: "add", path: "/metadata/finalizers", value: ["turnpike.dev/cleanup"] }],
            "application/json-patch+json",
          ),
      ],
      [
        "status (merge patch)",
        (name) =>
          client.call(
            "PATCH",
            `${base}/${name}/status?fieldManager=${MANAGER}`,
            { status: modelStatus(namespace, name, "all replicas available", now) },
            "application/merge-patch+json",
          ),
      ],
    ];
    for (const [phase, write] of phases) {
      await sleep(1000);
      const profile = profileOf(phase);
      const before = cpu();
      await forEachLimited(names, 16, async (name) => {
        const { status } = await write(name);
        if (status >= 300) throw new Error(`${phase} ${name}: HTTP ${status}`);
      });
      await sleep(1000);
      const spent = cpu() - before;
      await profile;
      console.log(`round ${round} ${phase}: apiserver+etcd ${(spent / objects).toFixed(2)} ms per model`);
    }
  }
}

/** A model's children, applied to and created absent, in alternating rounds. */
async function childWrites(client: KubeClient, cpu: () => number) {
  const settings = settingsFrom(loadOperatorEnv({}));
  const forms = ["apply", "create"] as const;
  const totals: Record<string, number[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const form of round % 2 ? [...forms].reverse() : forms) {
      const namespace = `wc-${form}-${round}`;
      await client.ok("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
      const children = Array.from({ length: objects }, (_, i) => {
        const im = sampleModel(`m${i}`, namespace) as unknown as InferenceModel;
        im.metadata!.uid = `00000000-0000-0000-0000-${String(i).padStart(12, "0")}`;
        return desiredChildren(im, settings).map(withDesiredHash);
      }).flat();
      await sleep(1000);
      const before = cpu();
      const started = performance.now();
      await forEachLimited(children, 16, async (child) => {
        const [group, version] = child.apiVersion!.includes("/")
          ? child.apiVersion!.split("/")
          : ["", child.apiVersion!];
        const plural = `${child.kind!.toLowerCase()}s`;
        const base = `${group ? `/apis/${group}/${version}` : `/api/${version}`}/namespaces/${namespace}/${plural}`;
        const { status } =
          form === "apply"
            ? await client.call(
                "PATCH",
                `${base}/${child.metadata!.name}?fieldManager=${MANAGER}&force=true`,
                child,
                "application/apply-patch+yaml",
              )
            : await client.call("POST", `${base}?fieldManager=${MANAGER}`, child);
        if (status >= 300) throw new Error(`${form} ${child.kind} ${child.metadata!.name}: HTTP ${status}`);
      });
      const seconds = (performance.now() - started) / 1000;
      await sleep(1000);
      const spent = cpu() - before;
      (totals[form] ??= []).push(spent / children.length);
      console.log(
        `round ${round} ${form}: ${children.length} objects in ${seconds.toFixed(1)} s, apiserver+etcd ${(spent / 1000).toFixed(2)} s CPU, ${(spent / children.length).toFixed(2)} ms per object`,
      );
    }
  }
  for (const [form, list] of Object.entries(totals))
    console.log(`${form}: ${list.map((v) => v.toFixed(2)).join(", ")} ms per object`);
}

/**
 * The same status change written in each form a status write can take, alternating the order by
 * round on the same models: each write changes the conditions' message, so every one is a real
 * update (an etcd write and a watch event), as the operator's are.
 */
async function statusWrites(client: KubeClient, cpu: () => number) {
  const namespace = "wc-status";
  await client.ok("POST", "/api/v1/namespaces", { metadata: { name: namespace } });
  const base = `${GROUP_PATH}/namespaces/${namespace}/inferencemodels`;
  const names = Array.from({ length: objects }, (_, i) => `m${i}`);
  const latest = new Map<string, KubernetesObject>();
  await forEachLimited(names, 16, async (name) => {
    latest.set(name, await client.ok("POST", `${base}?fieldManager=bench`, sampleModel(name, namespace)));
  });
  const now = new Date().toISOString();
  const status = (name: string, write: number) => modelStatus(namespace, name, `write ${write}`, now);
  const path = (name: string) => `${base}/${name}/status?fieldManager=${MANAGER}`;
  const forms: Record<string, (name: string, write: number) => Promise<{ status: number; body: unknown }>> = {
    "merge patch": (name, write) =>
      client.call("PATCH", path(name), { status: status(name, write) }, "application/merge-patch+json"),
    "merge patch + resourceVersion": (name, write) =>
      client.call(
        "PATCH",
        path(name),
        {
          metadata: { resourceVersion: latest.get(name)!.metadata!.resourceVersion },
          status: status(name, write),
        },
        "application/merge-patch+json",
      ),
    PUT: (name, write) =>
      client.call("PUT", path(name), { ...latest.get(name), status: status(name, write) }),
    apply: (name, write) =>
      client.call(
        "PATCH",
        `${path(name)}&force=true`,
        {
          apiVersion: "turnpike.dev/v1alpha1",
          kind: "InferenceModel",
          metadata: { name, namespace },
          status: status(name, write),
        },
        "application/apply-patch+yaml",
      ),
  };
  const totals: Record<string, number[]> = {};
  let write = 0;
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 ? Object.keys(forms).reverse() : Object.keys(forms);
    for (const form of order) {
      write++;
      await sleep(1000);
      const before = cpu();
      await forEachLimited(names, 16, async (name) => {
        const { status: code, body } = await forms[form]!(name, write);
        if (code >= 300)
          throw new Error(`${form} ${name}: HTTP ${code} ${JSON.stringify(body).slice(0, 300)}`);
        latest.set(name, body as KubernetesObject);
      });
      await sleep(1000);
      const spent = (cpu() - before) / objects;
      (totals[form] ??= []).push(spent);
      console.log(`round ${round} status ${form}: apiserver+etcd ${spent.toFixed(2)} ms per model`);
    }
  }
  for (const [form, list] of Object.entries(totals)) {
    const mean = list.reduce((a, b) => a + b, 0) / list.length;
    console.log(
      `status ${form}: ${list.map((v) => v.toFixed(2)).join(", ")} ms per model (mean ${mean.toFixed(2)})`,
    );
  }
}

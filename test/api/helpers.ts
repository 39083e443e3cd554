/**
 * Helpers for the API tests: namespaces, manifests as objects, and raw requests to the apiserver
 * (for the Table representation that `kubectl get` renders).
 */
import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import { load, loadAll } from "js-yaml";

import { kubectl, repoRoot, type KubectlResult } from "../harness/kube.js";
import { recordRunName } from "../harness/run-names.js";

export type Manifest = Record<string, unknown> & {
  kind: string;
  metadata: { name: string; generation?: number };
};

export const API_VERSION = "turnpike.dev/v1alpha1";

/** A namespace name unique to this test run and file. */
export function uniqueNamespace(prefix: string): string {
  const name = `${prefix}-${randomBytes(4).toString("hex")}`;
  recordRunName(name);
  return name;
}

/** Every YAML document of every file in samples/ and samples/shadow/, with the file it came from. */
export function loadSamples(): { file: string; manifest: Manifest }[] {
  const dir = join(repoRoot, "samples");
  const files = (sub: string) =>
    readdirSync(join(dir, sub))
      .filter((f) => f.endsWith(".yaml"))
      .sort()
      .map((f) => join(sub, f));
  // samples/shadow/ last: its Pipeline replaces the default `ocr` when both are applied.
  return [...files(""), ...files("shadow")].flatMap((file) =>
    loadAll(readFileSync(join(dir, file), "utf8"))
      .filter((doc): doc is Manifest => typeof doc === "object" && doc !== null)
      .map((manifest) => ({ file, manifest })),
  );
}

/** Server-side apply of one object into a namespace; dryRun asks the server to validate only. */
export function apply(namespace: string, manifest: object, options: { dryRun?: boolean } = {}) {
  const args = ["apply", "--server-side", "--field-manager=turnpike-tests", "-n", namespace, "-f", "-"];
  if (options.dryRun) args.push("--dry-run=server");
  return kubectl(args, JSON.stringify(manifest));
}

export async function getObject(namespace: string, resource: string, name: string): Promise<Manifest> {
  const result = await kubectl(["get", resource, name, "-n", namespace, "-o", "json"]);
  if (result.code !== 0) throw new Error(`kubectl get ${resource}/${name}: ${result.stderr}`);
  return JSON.parse(result.stdout) as Manifest;
}

export function describeFailure(result: KubectlResult): string {
  return `exit ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`;
}

interface Kubeconfig {
  clusters: { cluster: { server: string; "certificate-authority-data": string } }[];
  users: { user: { "client-certificate-data": string; "client-key-data": string } }[];
}

export interface Table {
  columnDefinitions: { name: string; type: string; priority: number }[];
  rows: { cells: unknown[]; object: { metadata: { name: string } } }[];
}

/** GET path as a meta.k8s.io/v1 Table, exactly what `kubectl get` asks the apiserver for. */
export async function getTable(path: string): Promise<Table> {
  const kubeconfigPath = process.env.KUBECONFIG;
  if (!kubeconfigPath) throw new Error("KUBECONFIG is not set");
  const config = load(readFileSync(kubeconfigPath, "utf8")) as Kubeconfig;
  const cluster = config.clusters[0]?.cluster;
  const user = config.users[0]?.user;
  if (!cluster || !user) throw new Error(`${kubeconfigPath} has no cluster or user`);
  const decode = (data: string) => Buffer.from(data, "base64");
  return new Promise((resolve, reject) => {
    const req = request(
      `${cluster.server}${path}`,
      {
        ca: decode(cluster["certificate-authority-data"]),
        cert: decode(user["client-certificate-data"]),
        key: decode(user["client-key-data"]),
        headers: { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io" },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (res.statusCode !== 200) reject(new Error(`GET ${path}: ${res.statusCode} ${body}`));
          else resolve(JSON.parse(body) as Table);
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export { patchStatus } from "../harness/kube.js";

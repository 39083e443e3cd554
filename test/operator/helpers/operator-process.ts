/**
 * The real operator as a child process (`npx tsx operator/main.ts`), run under a ServiceAccount
 * identity bound to config/operator/rbac.yaml, plus what its tests need around it: a namespace
 * with the runtime Secret, the operator's RBAC installed, a kubeconfig holding a minted token,
 * and the Deployment controller this apiserver lacks.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { load } from "js-yaml";
import { SECRET_KEYS } from "../../../operator/shared/names.js";
import { names } from "../../../runtime/shared/contracts/index.js";
import { kubectl, kubectlOk, repoRoot } from "../../harness/kube.js";
import { rabbitManagementUrl, serviceUrls } from "../../harness/services.js";

export const OPERATOR_NAMESPACE = "turnpike-system";
export const OPERATOR_SA = "turnpike-operator";

/** Installs config/operator/pepr-store.yaml and rbac.yaml (server-side apply, idempotent). */
export async function installOperatorRbac(): Promise<void> {
  const dir = join(repoRoot, "config/operator");
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", join(dir, "pepr-store.yaml")]);
  await kubectlOk(["wait", "--for=condition=Established", "crd/peprstores.pepr.dev", "--timeout=30s"]);
  await kubectlOk(["apply", "--server-side", "--force-conflicts", "-f", join(dir, "rbac.yaml")]);
}

/**
 * A ServiceAccount `name` in turnpike-system bound to the operator's ClusterRole and Pepr-store
 * Role (the rbac.yaml ones, for the turnpike-operator account itself), and a kubeconfig for it:
 * the harness's cluster (server + CA) and a token minted with the TokenRequest API.
 */
export async function serviceAccountKubeconfig(name = OPERATOR_SA): Promise<{ path: string; user: string }> {
  if (name !== OPERATOR_SA) {
    await kubectl(["create", "serviceaccount", name, "-n", OPERATOR_NAMESPACE]);
    await kubectl([
      "create",
      "clusterrolebinding",
      name,
      "--clusterrole=turnpike-operator",
      `--serviceaccount=${OPERATOR_NAMESPACE}:${name}`,
    ]);
    await kubectl([
      "create",
      "rolebinding",
      name,
      "-n",
      "pepr-system",
      "--role=turnpike-operator-pepr-store",
      `--serviceaccount=${OPERATOR_NAMESPACE}:${name}`,
    ]);
  }
  const token = (
    await kubectlOk(["create", "token", name, "-n", OPERATOR_NAMESPACE, "--duration=2h"])
  ).trim();
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  const admin = load(readFileSync(process.env.KUBECONFIG!, "utf8")) as any;
  const cluster = admin.clusters[0];
  const kubeconfig = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [cluster],
    users: [{ name, user: { token } }],
    contexts: [{ name, context: { cluster: cluster.name, user: name } }],
    "current-context": name,
  };
  const path = join(mkdtempSync(join(tmpdir(), "turnpike-sa-")), "kubeconfig");
  writeFileSync(path, JSON.stringify(kubeconfig), { mode: 0o600 });
  return { path, user: `system:serviceaccount:${OPERATOR_NAMESPACE}:${name}` };
}

/** The runtime Secret InferenceModel children reference (keys from operator/shared/names.ts). */
export async function createRuntimeSecret(namespace: string): Promise<void> {
  const urls = serviceUrls();
  await kubectlOk([
    "create",
    "secret",
    "generic",
    "turnpike-runtime",
    "-n",
    namespace,
    `--from-literal=${SECRET_KEYS.amqpUrl}=${urls.amqpUrl}`,
    `--from-literal=${SECRET_KEYS.redisUrl}=${urls.redisUrl}`,
    `--from-literal=${SECRET_KEYS.rabbitmqManagementUrl}=${rabbitManagementUrl()}`,
  ]);
}

/** Deletes the namespace-wide queues the operator or runtime may have declared for `namespace`. */
export async function deleteNamespaceQueues(namespace: string): Promise<void> {
  const urls = serviceUrls();
  const base = urls.rabbitManagementUrl.replace(/\/$/, "");
  const authorization = `Basic ${Buffer.from(`${urls.rabbitUser}:${urls.rabbitPassword}`).toString("base64")}`;
  const n = names(namespace);
  for (const queue of n.sharedQueues) {
    await fetch(`${base}/api/queues/%2F/${encodeURIComponent(queue)}`, {
      method: "DELETE",
      headers: { authorization },
    }).catch(() => undefined);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject()));
    });
  });
}

export interface OperatorProcess {
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** Resolves once Pepr's /healthz answers (its store is ready and the watches are set up). */
  healthy(timeoutMs?: number): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
  child: ChildProcess;
}

/** Starts `npx tsx operator/main.ts` with `kubeconfig`, reconciling only `namespaces`. */
export async function startOperator(options: {
  kubeconfig: string;
  namespaces: string[];
  resyncSeconds?: number;
  env?: Record<string, string>;
}): Promise<OperatorProcess> {
  const urls = serviceUrls();
  const port = await freePort();
  const child = spawn("npx", ["tsx", "operator/main.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      KUBECONFIG: options.kubeconfig,
      TURNPIKE_WATCH_NAMESPACES: options.namespaces.join(","),
      TURNPIKE_RESYNC_SECONDS: String(options.resyncSeconds ?? 3),
      TURNPIKE_OPERATOR_PORT: String(port),
      TURNPIKE_AMQP_URL: urls.amqpUrl,
      TURNPIKE_RABBIT_MANAGEMENT_URL: rabbitManagementUrl(),
      TURNPIKE_REDIS_URL: urls.redisUrl,
      SSL_KEY_PATH: "",
      SSL_CERT_PATH: "",
      ...options.env,
    },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const chunks: Buffer[] = [];
  child.stdout!.on("data", (chunk: Buffer) => chunks.push(chunk));
  child.stderr!.on("data", (chunk: Buffer) => chunks.push(chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const output = () => Buffer.concat(chunks).toString("utf8");
  return {
    child,
    output,
    async healthy(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (child.exitCode !== null) throw new Error(`operator exited (${child.exitCode}):\n${output()}`);
        const ok = await healthz(port);
        if (ok) return;
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`operator not healthy within ${timeoutMs} ms:\n${output().slice(-4000)}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        // npx -> sh -> node: signal the whole process group we started.
        process.kill(-child.pid!, "SIGTERM");
        const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 10_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

async function healthz(port: number): Promise<boolean> {
  const { request } = await import("node:https");
  return new Promise((resolve) => {
    const req = request(
      { host: "127.0.0.1", port, path: "/healthz", rejectUnauthorized: false, timeout: 1000 },
      (res) => {
        res.resume();
        resolve(res.statusCode === 200);
      },
    );
    req.on("error", () => resolve(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

/** `kubectl get -o json` of one object, or undefined when it does not exist. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function getJson(namespace: string, resource: string, name: string): Promise<any> {
  const result = await kubectl(["get", resource, name, "-n", namespace, "-o", "json"]);
  if (result.code !== 0) {
    if (/NotFound|not found/.test(result.stderr)) return undefined;
    throw new Error(`kubectl get ${resource} ${name}: ${result.stderr}`);
  }
  return JSON.parse(result.stdout);
}

/** Polls `check` until it returns something other than undefined. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`${what}: not reached within ${timeoutMs} ms`, { cause: lastError });
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The Ready condition of an object, or undefined. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function conditionOf(object: any, type = "Ready") {
  return object?.status?.conditions?.find((c: { type: string }) => c.type === type) as
    | { status: string; reason: string; message: string; observedGeneration?: number }
    | undefined;
}

/** Requests by `user` after `mark` that the apiserver refused with 403 (the audit log has writes only). */
export function forbiddenSince(mark: number, user: string): string[] {
  const text = readFileSync(process.env.TURNPIKE_AUDIT_LOG!).subarray(mark).toString("utf8");
  return text
    .split("\n")
    .filter((line) => line.trim())
    .map((line) => JSON.parse(line))
    .filter(
      (e) => e.stage === "ResponseComplete" && e.user?.username === user && e.responseStatus?.code === 403,
    )
    .map(
      (e) =>
        `${e.verb} ${e.objectRef?.resource}/${e.objectRef?.subresource ?? ""} ${e.objectRef?.namespace ?? ""}`,
    );
}

export { markDeploymentAvailable } from "../../harness/kube.js";

/**
 * `make run`: the whole system on one machine. Starts the services and a local cluster (etcd,
 * kube-apiserver, kube-controller-manager, kube-scheduler, KEDA's operator and metrics adapter, and
 * the node agent that runs Pods as local processes), installs the CRDs, runs the operator, applies
 * samples/ and the gateway and collector manifests of config/runtime/, waits until the models are
 * Ready, then prints a working request. Ctrl-C stops everything it started and nothing else.
 *
 * Settings (environment): TURNPIKE_RUN_DIR (state, default ~/.cache/turnpike/run),
 * TURNPIKE_GATEWAY_PORT (default 8080), TURNPIKE_NAMESPACE (default turnpike-demo).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startKubeControllers } from "./cluster/controllers.js";
import { startKeda } from "./cluster/keda.js";
import { freePort, installCrds, kedaCrdDir, startControlPlane } from "./control-plane.js";
import { NodeAgent } from "./node-agent/agent.js";
import { startServiceProxy } from "./node-agent/service-proxy.js";
import { ocrRequestBody } from "./run/sample-request.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const runDir = process.env.TURNPIKE_RUN_DIR ?? join(homedir(), ".cache/turnpike/run");
const namespace = process.env.TURNPIKE_NAMESPACE ?? "turnpike-demo";
const gatewayPort = Number(process.env.TURNPIKE_GATEWAY_PORT ?? 8080);
const logDir = join(runDir, "logs");
/** Local directories standing for PersistentVolumeClaims, one per claim name. */
const pvcRoot = join(homedir(), ".cache/turnpike");
const started = Date.now();
const say = (line: string) =>
  process.stdout.write(`[run +${((Date.now() - started) / 1000).toFixed(1)}s] ${line}\n`);

const connections = {
  TURNPIKE_AMQP_URL: "amqp://turnpike:turnpike@127.0.0.1:5672",
  TURNPIKE_REDIS_URL: "redis://127.0.0.1:6379",
  TURNPIKE_DATABASE_URL: "postgres://turnpike:turnpike@127.0.0.1:5432/turnpike",
  TURNPIKE_RABBIT_MANAGEMENT_URL: "http://turnpike:turnpike@127.0.0.1:15672",
};

const children: Array<{ name: string; process: ChildProcess }> = [];
const stops: Array<() => Promise<void>> = [];

function servicesRunning(): boolean {
  try {
    execFileSync("bash", [join(repoRoot, "hack/services.sh"), "status"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

const logs = new Map<string, ReturnType<typeof createWriteStream>>();
/** Appends a timestamped line to logs/<name>.log. */
function logLine(name: string, line: string): void {
  if (!logs.has(name)) logs.set(name, createWriteStream(join(logDir, `${name}.log`), { flags: "a" }));
  logs.get(name)!.write(`${new Date().toISOString()} ${line}\n`);
}

/** Starts a TypeScript entry point as a child process with its output in logs/<name>.log. */
function startProcess(name: string, entry: string, env: NodeJS.ProcessEnv): ChildProcess {
  const log = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  const child = spawn(process.execPath, ["--import", "tsx", entry], {
    cwd: repoRoot,
    env: { ...process.env, ...connections, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  child.once("exit", (code, signal) => {
    if (!stopping) say(`${name} exited (${signal ?? code}); see ${join(logDir, `${name}.log`)}`);
  });
  children.push({ name, process: child });
  return child;
}

function kubectl(binDir: string, kubeconfig: string, args: string[], input?: string): string {
  return execFileSync(join(binDir, "kubectl"), ["--kubeconfig", kubeconfig, ...args], {
    encoding: "utf8",
    input,
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** A PersistentVolume over <root>/models and the claim `models` bound to it (by the real binder). */
function modelsVolume(ns: string, root: string) {
  const volume = `turnpike-models-${ns}`;
  const common = { accessModes: ["ReadOnlyMany"], storageClassName: "turnpike-local" };
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      {
        apiVersion: "v1",
        kind: "PersistentVolume",
        metadata: { name: volume },
        spec: {
          ...common,
          capacity: { storage: "1Gi" },
          hostPath: { path: join(root, "models"), type: "DirectoryOrCreate" },
          claimRef: { namespace: ns, name: "models" },
        },
      },
      {
        apiVersion: "v1",
        kind: "PersistentVolumeClaim",
        metadata: { name: "models", namespace: ns },
        spec: { ...common, volumeName: volume, resources: { requests: { storage: "1Gi" } } },
      },
    ],
  };
}

async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await (async () => check())().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}; logs are in ${logDir}`);
}

let stopping = false;
let stoppingSince = 0;
async function shutdown(code: number): Promise<never> {
  if (stopping) {
    // Ctrl-C reaches npm, tsx and this process alike, and tsx relays it once more: a repeat within
    // 2 s is that echo, not a user asking to skip the clean-up (which would leave etcd, the
    // apiserver and the Pods' processes running).
    if (Date.now() - stoppingSince < 2000) return new Promise<never>(() => undefined);
    process.exit(code);
  }
  stopping = true;
  stoppingSince = Date.now();
  say("stopping everything this run started");
  for (const { process: child } of children.reverse()) child.kill("SIGTERM");
  await Promise.all(
    children.map(
      ({ process: child }) =>
        new Promise<void>((r) => (child.exitCode !== null ? r() : child.once("exit", () => r()))),
    ),
  );
  for (const stop of stops.reverse()) await stop().catch(() => undefined);
  process.exit(code);
}
process.on("SIGINT", () => void shutdown(0));
process.on("SIGTERM", () => void shutdown(0));

async function main() {
  mkdirSync(logDir, { recursive: true });

  const servicesWereRunning = servicesRunning();
  say(servicesWereRunning ? "services already running" : "starting PostgreSQL, Redis and RabbitMQ");
  execFileSync("bash", [join(repoRoot, "hack/services.sh")], { stdio: ["ignore", "ignore", "inherit"] });
  if (!servicesWereRunning) {
    stops.push(async () => {
      execFileSync("bash", [join(repoRoot, "hack/services.sh"), "stop"], { stdio: "ignore" });
    });
  }

  say("starting the local control plane (etcd + kube-apiserver; the first build takes minutes)");
  const plane = await startControlPlane({ stateDir: join(runDir, "control-plane") });
  stops.push(() => plane.stop());
  process.env.KUBECONFIG = plane.kubeconfig;
  const k = (args: string[], input?: string) => kubectl(plane.binDir, plane.kubeconfig, args, input);

  say("installing the Turnpike and KEDA CRDs");
  await installCrds(plane.kubeconfig, plane.binDir);
  await installCrds(plane.kubeconfig, plane.binDir, kedaCrdDir());
  k(
    ["apply", "--server-side", "-f", "-"],
    JSON.stringify({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace } }),
  );
  k(
    ["apply", "--server-side", "-n", namespace, "-f", "-"],
    JSON.stringify({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "turnpike-runtime" },
      stringData: {
        "amqp-url": connections.TURNPIKE_AMQP_URL,
        "redis-url": connections.TURNPIKE_REDIS_URL,
        "database-url": connections.TURNPIKE_DATABASE_URL,
        "rabbitmq-management-url": connections.TURNPIKE_RABBIT_MANAGEMENT_URL,
      },
    }),
  );

  say("starting kube-controller-manager and kube-scheduler");
  const controllers = await startKubeControllers(plane);
  stops.push(() => controllers.stop());
  say("starting KEDA's operator and metrics adapter (the first build takes about 8 minutes)");
  const keda = await startKeda(plane);
  stops.push(() => keda.stop());
  const agent = new NodeAgent({
    kubeconfig: plane.kubeconfig,
    repoRoot,
    stateDir: runDir,
    pvcRoot,
    say: (line) => logLine("node-agent", line),
  });
  await agent.start();
  stops.push(() => agent.stop());
  say(`node agent registered Node ${agent.nodeName}; Pod logs under ${join(runDir, "pods")}`);

  say("starting the operator");
  startProcess("operator", "operator/main.ts", {
    KUBECONFIG: plane.kubeconfig,
    TURNPIKE_OPERATOR_PORT: String(await freePort()),
    TURNPIKE_RESYNC_SECONDS: "5",
  });

  // samples/inference-model-smollm2.yaml reads its model from the claim `models`: here a local
  // volume over the cache hack/fetch-llm-model.sh fills (the node agent mounts <pvcRoot>/<claim>).
  say("applying samples/ and the claim `models` over ~/.cache/turnpike/models");
  k(["apply", "--server-side", "-f", "-"], JSON.stringify(modelsVolume(namespace, pvcRoot)));
  k(["apply", "--server-side", "-n", namespace, "-f", join(repoRoot, "samples")]);

  await waitUntil(
    "the operator to render the runtime config",
    () => k(["get", "configmap", "turnpike-runtime", "-n", namespace, "-o", "name"]).trim() !== "",
    120_000,
  );

  say("applying the gateway and collector of config/runtime/ (run by the node agent)");
  for (const file of ["gateway.yaml", "collector.yaml"]) {
    k(["apply", "--server-side", "-n", namespace, "-f", join(repoRoot, "config/runtime", file)]);
  }
  // kube-proxy's part for the gateway Service: the fixed local port spreads over the ready gateway Pods.
  const proxy = await startServiceProxy({
    agent,
    namespace,
    selector: { "app.kubernetes.io/name": "turnpike-gateway", "app.kubernetes.io/component": "gateway" },
    targetPort: "http",
    listenPort: gatewayPort,
  });
  stops.push(() => proxy.stop());

  const models = JSON.parse(k(["get", "inferencemodels", "-n", namespace, "-o", "json"])).items as Array<{
    metadata: { name: string };
    spec: { gpu?: { count?: number } };
  }>;
  const local = models.filter((m) => !m.spec.gpu?.count).map((m) => m.metadata.name);
  say(`waiting until ${local.join(", ")} are Ready (loading and warming up the models)`);
  await waitUntil(
    "the models to become Ready",
    () => {
      k([
        "wait",
        "--for=condition=Ready",
        "--timeout=2s",
        "-n",
        namespace,
        ...local.map((n) => `inferencemodel/${n}`),
      ]);
      return true;
    },
    300_000,
  );
  await waitUntil(
    "the gateway",
    async () => (await fetch(`http://127.0.0.1:${gatewayPort}/v2/health/ready`)).ok,
    60_000,
  );

  const requestPath = join(runDir, "ocr-request.json");
  if (!existsSync(requestPath)) writeFileSync(requestPath, JSON.stringify(ocrRequestBody("Hello Turnpike")));
  const apiKey = /apiKey:\s*(\S+)/.exec(
    readFileSync(join(repoRoot, "samples/tenant-quota-free.yaml"), "utf8"),
  )?.[1];

  process.stdout.write(`
${k(["get", "inferencemodels", "-n", namespace])}
Turnpike is up in ${((Date.now() - started) / 1000).toFixed(1)}s. Try it:

  curl -s -H 'Authorization: Bearer ${apiKey}' -H 'Content-Type: application/json' \\
    --data @${requestPath} http://127.0.0.1:${gatewayPort}/v2/models/ocr-rec/infer

  export KUBECONFIG=${plane.kubeconfig}
  ${join(plane.binDir, "kubectl")} get inferencemodels,tenantquotas,pipelines.turnpike.dev -n ${namespace}
  ${join(plane.binDir, "kubectl")} get pods,hpa,scaledobjects -A

Metrics: http://127.0.0.1:${gatewayPort}/metrics (gateway). Pod logs: ${join(runDir, "pods")}/<namespace>_<pod>_*/<container>.log
Control plane and KEDA logs: ${plane.stateDir}; the operator's: ${logDir}.
Press Ctrl-C to stop.
TURNPIKE_READY
`);
}

main().catch(async (error: unknown) => {
  process.stderr.write(`make run failed: ${(error as Error).stack ?? error}\n`);
  await shutdown(1);
});

/**
 * Starts a throwaway Kubernetes control plane (etcd + kube-apiserver) on loopback, with its own CA,
 * an admin client certificate, RBAC on and service-account tokens working. The same flag set as
 * controller-runtime's envtest. Binaries come from hack/build-control-plane.sh (cached by version).
 *
 * Used by the test harness (global setup) and by `make run`; as a script it starts a control plane,
 * prints its kubeconfig path and keeps running until interrupted.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { promisify } from "node:util";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "node:https";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "..");

export interface ControlPlane {
  /** Path of a kubeconfig for the system:masters admin, carrying the CA (fluent-client needs it). */
  kubeconfig: string;
  /** https://127.0.0.1:PORT */
  server: string;
  /** Directory holding the binaries (kubectl among them). */
  binDir: string;
  /** Directory holding certificates, etcd data and logs. */
  stateDir: string;
  /** Directory of the cluster CA (ca.crt, ca.key), the service-account key pair and the admin cert. */
  certDir: string;
  /** PEM of the cluster CA, for clients built by hand. */
  caPem: string;
  /** JSON-lines audit log of every write (create/update/patch/delete), for "zero writes" checks. */
  auditLog: string;
  stop(): Promise<void>;
}

export interface ControlPlaneOptions {
  /** Keep state here instead of a fresh temporary directory (etcd data survives restarts). */
  stateDir?: string;
  /** Log progress lines to stderr. */
  verbose?: boolean;
  /**
   * Kubernetes version the apiserver emulates (`--emulated-version`, e.g. "1.33"; the binary
   * accepts down to three minors below its own): gates APIs, features and the CEL libraries new
   * expressions may use as that version does.
   */
  emulatedVersion?: string;
  /** More kube-apiserver flags (e.g. a feature gate a benchmark compares with and without). */
  apiserverArgs?: string[];
}

/** Builds (or finds cached) binaries and returns their directory. */
export function ensureControlPlaneBinaries(): string {
  const out = execFileSync("bash", [join(repoRoot, "hack/build-control-plane.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  const binDir = out.trim().split("\n").pop();
  if (!binDir) throw new Error("hack/build-control-plane.sh printed no bin directory");
  return binDir;
}

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolvePort(address.port) : reject()));
    });
  });
}

export function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

const CERT_DAYS = "3650";

/** A self-signed CA: `<name>.key` and `<name>.crt` in `dir`. */
function makeCa(dir: string, name: string, commonName: string): void {
  openssl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.crt`].concat(
      ["-days", CERT_DAYS, "-subj", `/CN=${commonName}`],
    ),
    dir,
  );
}

/**
 * `<name>.key` and `<name>.crt` in `dir` for `subject`, signed by the CA at `caPath` (.crt and .key
 * beside each other, without the suffix) with the extensions in the file `extFile`.
 */
export function issueCert(dir: string, caPath: string, name: string, subject: string, extFile: string): void {
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      subject,
    ],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      `${caPath}.crt`,
      "-CAkey",
      `${caPath}.key`,
      "-CAcreateserial",
    ].concat(["-out", `${name}.crt`, "-days", CERT_DAYS, "-extfile", extFile]),
    dir,
  );
}

/** A CA, a serving cert for 127.0.0.1/localhost, an admin client cert and a service-account key pair. */
function makeCertificates(dir: string): void {
  mkdirSync(dir, { recursive: true });
  makeCa(dir, "ca", "turnpike-test-ca");
  writeFileSync(
    join(dir, "serving.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  issueCert(dir, "ca", "serving", "/CN=kube-apiserver", "serving.ext");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  issueCert(dir, "ca", "admin", "/O=system:masters/CN=turnpike-admin", "client.ext");
  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
}

/**
 * The aggregation layer's front-proxy CA and the client cert the apiserver presents to aggregated
 * API servers (KEDA's metrics adapter), as kubeadm lays them out.
 */
function makeFrontProxyCertificates(dir: string): void {
  makeCa(dir, "front-proxy-ca", "turnpike-front-proxy-ca");
  writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
  issueCert(dir, "front-proxy-ca", "front-proxy-client", "/CN=front-proxy-client", "client.ext");
}

function b64(path: string): string {
  return readFileSync(path).toString("base64");
}

function writeKubeconfig(path: string, server: string, certDir: string): void {
  const kubeconfig = `apiVersion: v1
kind: Config
clusters:
- name: turnpike
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(join(certDir, "ca.crt"))}
users:
- name: admin
  user:
    client-certificate-data: ${b64(join(certDir, "admin.crt"))}
    client-key-data: ${b64(join(certDir, "admin.key"))}
contexts:
- name: turnpike
  context:
    cluster: turnpike
    user: admin
current-context: turnpike
`;
  writeFileSync(path, kubeconfig, { mode: 0o600 });
}

export function launch(
  binary: string,
  args: string[],
  logFile: string,
  env?: NodeJS.ProcessEnv,
): ChildProcess {
  const log = openSync(logFile, "a");
  // detached: its own process group, so a Ctrl-C to `make run` reaches it only through stop().
  return spawn(binary, args, {
    stdio: ["ignore", log, log],
    detached: true,
    env: env ? { ...process.env, ...env } : process.env,
  });
}

export async function waitFor(
  what: string,
  probe: () => Promise<boolean>,
  timeoutMs: number,
  logFile: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = readFileSync(logFile, "utf8").split("\n").slice(-20).join("\n");
  throw new Error(`${what} did not become ready within ${timeoutMs} ms; last log lines:\n${tail}`);
}

function httpsOk(url: string, agent: Agent): Promise<boolean> {
  return new Promise((resolveOk) => {
    const req = request(url, { agent, timeout: 2000 }, (res) => {
      res.resume();
      resolveOk(res.statusCode === 200);
    });
    req.on("error", () => resolveOk(false));
    req.on("timeout", () => req.destroy());
    req.end();
  });
}

export async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  await exited;
  clearTimeout(timer);
}

/** Starts etcd and kube-apiserver, waits for /readyz, writes a kubeconfig. */
export async function startControlPlane(options: ControlPlaneOptions = {}): Promise<ControlPlane> {
  const say = (line: string) => options.verbose && process.stderr.write(`[control-plane] ${line}\n`);
  const binDir = ensureControlPlaneBinaries();
  const stateDir = options.stateDir ?? mkdtempSync(join(tmpdir(), "turnpike-cp-"));
  const certDir = join(stateDir, "pki");
  mkdirSync(stateDir, { recursive: true });
  try {
    readFileSync(join(certDir, "admin.crt"));
  } catch {
    makeCertificates(certDir);
  }
  if (!existsSync(join(certDir, "front-proxy-client.crt"))) makeFrontProxyCertificates(certDir);

  const [etcdPort, etcdPeerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdPort}`;
  const etcdLog = join(stateDir, "etcd.log");
  say(`starting etcd on ${etcdUrl}`);
  const etcd = launch(
    join(binDir, "etcd"),
    [
      "--name=turnpike",
      `--data-dir=${join(stateDir, "etcd")}`,
      `--listen-client-urls=${etcdUrl}`,
      `--advertise-client-urls=${etcdUrl}`,
      `--listen-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeerPort}`,
      `--initial-cluster=turnpike=http://127.0.0.1:${etcdPeerPort}`,
      // Throwaway data: fsync buys nothing here and costs seconds on a shared disk.
      "--unsafe-no-fsync=true",
      "--log-level=warn",
    ],
    etcdLog,
  );
  await waitFor("etcd", async () => (await fetch(`${etcdUrl}/health`)).ok, 30_000, etcdLog);

  const server = `https://127.0.0.1:${apiPort}`;
  const apiLog = join(stateDir, "kube-apiserver.log");
  const auditLog = join(stateDir, "audit.log");
  const auditPolicy = join(stateDir, "audit-policy.yaml");
  // Writes only, metadata level: enough to count who wrote what, cheap enough to leave on.
  writeFileSync(
    auditPolicy,
    [
      "apiVersion: audit.k8s.io/v1",
      "kind: Policy",
      "omitStages: [RequestReceived]",
      "rules:",
      "- level: Metadata",
      "  verbs: [create, update, patch, delete, deletecollection]",
      "- level: None",
      "",
    ].join("\n"),
  );
  say(`starting kube-apiserver on ${server}`);
  const apiserver = launch(
    join(binDir, "kube-apiserver"),
    [
      `--etcd-servers=${etcdUrl}`,
      `--cert-dir=${certDir}`,
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${apiPort}`,
      `--tls-cert-file=${join(certDir, "serving.crt")}`,
      `--tls-private-key-file=${join(certDir, "serving.key")}`,
      `--client-ca-file=${join(certDir, "ca.crt")}`,
      "--authorization-mode=RBAC",
      `--service-account-key-file=${join(certDir, "sa.pub")}`,
      `--service-account-signing-key-file=${join(certDir, "sa.key")}`,
      "--service-account-issuer=https://kubernetes.default.svc",
      "--service-cluster-ip-range=10.0.0.0/24",
      "--allow-privileged=true",
      // No controller-manager creates default ServiceAccounts in this control plane.
      "--disable-admission-plugins=ServiceAccount",
      // The aggregation layer, so an APIService (KEDA's external metrics) serves as on a cluster.
      `--requestheader-client-ca-file=${join(certDir, "front-proxy-ca.crt")}`,
      "--requestheader-allowed-names=front-proxy-client",
      "--requestheader-username-headers=X-Remote-User",
      "--requestheader-group-headers=X-Remote-Group",
      "--requestheader-extra-headers-prefix=X-Remote-Extra-",
      `--proxy-client-cert-file=${join(certDir, "front-proxy-client.crt")}`,
      `--proxy-client-key-file=${join(certDir, "front-proxy-client.key")}`,
      `--audit-policy-file=${auditPolicy}`,
      `--audit-log-path=${auditLog}`,
      "--audit-log-mode=blocking",
      ...(options.emulatedVersion ? [`--emulated-version=kube=${options.emulatedVersion}`] : []),
      ...(options.apiserverArgs ?? []),
      "--v=0",
    ],
    apiLog,
  );
  const agent = new Agent({
    ca: readFileSync(join(certDir, "ca.crt")),
    cert: readFileSync(join(certDir, "admin.crt")),
    key: readFileSync(join(certDir, "admin.key")),
  });
  await waitFor("kube-apiserver", () => httpsOk(`${server}/readyz`, agent), 90_000, apiLog);

  const kubeconfig = join(stateDir, "kubeconfig");
  writeKubeconfig(kubeconfig, server, certDir);
  say(`ready; KUBECONFIG=${kubeconfig}`);

  const ownsStateDir = options.stateDir === undefined;
  return {
    kubeconfig,
    server,
    binDir,
    stateDir,
    certDir,
    caPem: readFileSync(join(certDir, "ca.crt"), "utf8"),
    auditLog,
    async stop() {
      agent.destroy();
      await stopProcess(apiserver);
      await stopProcess(etcd);
      if (ownsStateDir) rmSync(stateDir, { recursive: true, force: true });
    },
  };
}

/** Applies every CRD YAML in `dir` (server-side) and waits until each is Established. */
export async function installCrds(kubeconfig: string, binDir: string, dir = join(repoRoot, "crds")) {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".yaml"))
    .flatMap((f) => ["-f", join(dir, f)]);
  if (files.length === 0) return;
  const run = (args: string[]) =>
    promisify(execFile)(join(binDir, "kubectl"), ["--kubeconfig", kubeconfig, ...args]);
  await run(["apply", "--server-side", "--force-conflicts", ...files]);
  // A CRD the apiserver has not given a status yet makes `kubectl wait` fail at once ("accessor
  // error: <nil>") instead of waiting; seen under load. Ask again until every status exists.
  for (let attempt = 1; ; attempt++) {
    try {
      await run(["wait", "--for=condition=Established", "--timeout=60s", ...files]);
      return;
    } catch (error) {
      const stderr = String((error as { stderr?: unknown }).stderr ?? "");
      if (attempt >= 20 || !stderr.includes("accessor error")) throw error;
      await new Promise((done) => setTimeout(done, 250));
    }
  }
}

/** KEDA's CRD directory, from KEDA's Go module (hack/keda-crds.sh). */
export function kedaCrdDir(): string {
  return execFileSync("bash", [join(repoRoot, "hack/keda-crds.sh")], { encoding: "utf8" }).trim();
}

// As a script: start, print the kubeconfig, run until SIGINT/SIGTERM.
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const stateDir = process.env.TURNPIKE_STATE_DIR;
  const plane = await startControlPlane({ stateDir, verbose: true });
  console.log(`export KUBECONFIG=${plane.kubeconfig}`);
  const shutdown = async () => {
    await plane.stop();
    process.exit(0);
  };
  process.on("SIGINT", shutdown);
  process.on("SIGTERM", shutdown);
}

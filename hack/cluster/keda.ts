/**
 * KEDA's operator and metrics adapter (built by hack/build-keda.sh) as local processes against a
 * throwaway control plane, wired as on a cluster: the adapter serves `external.metrics.k8s.io`
 * through the apiserver's aggregation layer, and the HPA controller reads KEDA's metrics from there.
 *
 * Endpoints refuse loopback addresses, so the APIService's Service is of type ExternalName
 * (`localhost`): the aggregator resolves such a Service to https://<externalName>:<port> without
 * Endpoints (k8s.io/apiserver pkg/util/proxy ResolveCluster), and nothing leaves the machine.
 */
import { execFile, execFileSync, type ChildProcess } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { freePort, issueCert, launch, stopProcess, waitFor, type ControlPlane } from "../control-plane.js";

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const KEDA_NAMESPACE = "keda";
const ADAPTER_SERVICE = "keda-metrics-apiserver";

export interface Keda {
  stop(): Promise<void>;
}

/** Builds (or finds cached) KEDA's binaries and returns their directory. */
export function ensureKedaBinaries(): string {
  const out = execFileSync("bash", [join(repoRoot, "hack/build-keda.sh")], {
    stdio: ["ignore", "pipe", "inherit"],
    encoding: "utf8",
  });
  const binDir = out.trim().split("\n").pop();
  if (!binDir) throw new Error("hack/build-keda.sh printed no bin directory");
  return binDir;
}

/**
 * The mTLS material KEDA's operator (gRPC metrics service) and adapter share, in the layout KEDA's
 * cert rotation would write (ca.crt, tls.crt, tls.key), signed by the cluster CA; the same pair
 * serves the adapter's HTTPS.
 */
function kedaCertificates(plane: ControlPlane): string {
  const dir = join(plane.stateDir, "keda-certs");
  if (existsSync(join(dir, "tls.crt"))) return dir;
  mkdirSync(dir, { recursive: true });
  copyFileSync(join(plane.certDir, "ca.crt"), join(dir, "ca.crt"));
  // Extra CAs for scalers: KEDA reads every file of --ca-dir as a certificate.
  mkdirSync(join(dir, "scaler-ca"), { recursive: true });
  copyFileSync(join(plane.certDir, "ca.crt"), join(dir, "scaler-ca", "ca.crt"));
  writeFileSync(
    join(dir, "tls.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
  );
  issueCert(dir, join(plane.certDir, "ca"), "tls", "/CN=keda", "tls.ext");
  return dir;
}

/** The namespace, the ExternalName Service and the APIService that route external metrics to the adapter. */
function registration(adapterPort: number): object {
  return {
    apiVersion: "v1",
    kind: "List",
    items: [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: KEDA_NAMESPACE } },
      {
        apiVersion: "v1",
        kind: "Service",
        metadata: { name: ADAPTER_SERVICE, namespace: KEDA_NAMESPACE },
        spec: { type: "ExternalName", externalName: "localhost" },
      },
      {
        apiVersion: "apiregistration.k8s.io/v1",
        kind: "APIService",
        metadata: { name: "v1beta1.external.metrics.k8s.io" },
        spec: {
          group: "external.metrics.k8s.io",
          version: "v1beta1",
          groupPriorityMinimum: 100,
          versionPriority: 100,
          // The adapter's cert names localhost, not the Service's DNS name; loopback only.
          insecureSkipTLSVerify: true,
          service: { name: ADAPTER_SERVICE, namespace: KEDA_NAMESPACE, port: adapterPort },
        },
      },
    ],
  };
}

async function probeOk(url: string): Promise<boolean> {
  return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok;
}

/** Starts KEDA's operator and adapter; resolves once the external metrics API answers through the apiserver. */
export async function startKeda(plane: ControlPlane): Promise<Keda> {
  const binDir = ensureKedaBinaries();
  const certs = kedaCertificates(plane);
  const kubectl = (args: string[]) =>
    promisify(execFile)(join(plane.binDir, "kubectl"), ["--kubeconfig", plane.kubeconfig, ...args]);
  const [grpcPort, probePort, adapterPort, adapterMetricsPort] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];
  const env = {
    KUBECONFIG: plane.kubeconfig,
    WATCH_NAMESPACE: "",
    POD_NAMESPACE: KEDA_NAMESPACE,
    KEDA_CLUSTER_OBJECT_NAMESPACE: KEDA_NAMESPACE,
  };
  const applied = kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"]);
  applied.child.stdin?.end(JSON.stringify(registration(adapterPort)));
  await applied;

  const children: ChildProcess[] = [];
  const stop = async () => {
    for (const child of children.reverse()) await stopProcess(child);
  };
  try {
    const operatorLog = join(plane.stateDir, "keda-operator.log");
    children.push(
      launch(
        join(binDir, "keda-operator"),
        [
          "--leader-elect=false",
          "--metrics-bind-address=0",
          `--health-probe-bind-address=127.0.0.1:${probePort}`,
          `--metrics-service-bind-address=127.0.0.1:${grpcPort}`,
          `--cert-dir=${certs}`,
          `--ca-dir=${join(certs, "scaler-ca")}`,
          "--enable-cert-rotation=false",
          "--enable-webhook-patching=false",
          "--enable-apiservice-patching=false",
          "--zap-log-level=info",
        ],
        operatorLog,
        env,
      ),
    );
    await waitFor(
      "KEDA operator",
      () => probeOk(`http://127.0.0.1:${probePort}/readyz`),
      90_000,
      operatorLog,
    );

    const adapterLog = join(plane.stateDir, "keda-adapter.log");
    children.push(
      launch(
        join(binDir, "keda-adapter"),
        [
          `--secure-port=${adapterPort}`,
          // Its Prometheus endpoint binds all interfaces on this port (default 8080, the gateway's).
          `--port=${adapterMetricsPort}`,
          "--bind-address=127.0.0.1",
          `--cert-dir=${certs}`,
          `--tls-cert-file=${join(certs, "tls.crt")}`,
          `--tls-private-key-file=${join(certs, "tls.key")}`,
          `--metrics-service-address=localhost:${grpcPort}`,
          `--lister-kubeconfig=${plane.kubeconfig}`,
          `--authentication-kubeconfig=${plane.kubeconfig}`,
          `--authorization-kubeconfig=${plane.kubeconfig}`,
        ],
        adapterLog,
        env,
      ),
    );
    await waitFor(
      "KEDA metrics adapter behind the aggregation layer",
      async () => {
        await kubectl(["get", "--raw", "/apis/external.metrics.k8s.io/v1beta1"]);
        return true;
      },
      120_000,
      adapterLog,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { stop };
}

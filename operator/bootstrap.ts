/**
 * What must exist before the Pepr module starts, made idempotently: the `pepr-system` namespace
 * and Pepr's store CRD (without them Pepr's controller silently never starts watching), and a TLS
 * key pair for Pepr's HTTPS health/metrics server.
 *
 * In a cluster both objects come with the operator's manifests (config/operator/pepr-store.yaml),
 * so the operator's ServiceAccount only needs to read them; creating them here is for local runs
 * with admin credentials.
 */
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { K8s, kind } from "kubernetes-fluent-client";
import type { Logger } from "../runtime/shared/logger.js";
import { httpStatusOf } from "./shared/errors.js";

export const PEPR_NAMESPACE = "pepr-system";

/** Pepr's store CRD, the same shape as node_modules/pepr/src/lib/assets/store.ts. */
export const peprStoreCrd = {
  apiVersion: "apiextensions.k8s.io/v1",
  kind: "CustomResourceDefinition",
  metadata: { name: "peprstores.pepr.dev" },
  spec: {
    group: "pepr.dev",
    versions: [
      {
        name: "v1",
        served: true,
        storage: true,
        schema: {
          openAPIV3Schema: {
            type: "object",
            properties: { data: { type: "object", additionalProperties: { type: "string" } } },
          },
        },
      },
    ],
    scope: "Namespaced",
    names: { plural: "peprstores", singular: "peprstore", kind: "PeprStore" },
  },
};

async function exists(get: () => Promise<unknown>, what: string): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (error) {
    if (httpStatusOf(error) === 404) return false;
    throw new Error(`reading ${what}`, { cause: error });
  }
}

async function create(apply: () => Promise<unknown>, what: string): Promise<void> {
  try {
    await apply();
  } catch (error) {
    const hint =
      httpStatusOf(error) === 403
        ? ": the operator may not create it; apply config/operator/pepr-store.yaml with admin rights"
        : "";
    throw new Error(`creating ${what}${hint}`, { cause: error });
  }
}

/** Ensures namespace pepr-system and CRD peprstores.pepr.dev exist (and the CRD is Established). */
export async function ensurePeprPrerequisites(log: Logger, timeoutMs = 30_000): Promise<void> {
  const namespace = `namespace ${PEPR_NAMESPACE}`;
  if (!(await exists(() => K8s(kind.Namespace).Get(PEPR_NAMESPACE), namespace))) {
    await create(() => K8s(kind.Namespace).Apply({ metadata: { name: PEPR_NAMESPACE } }), namespace);
    log.info(`created ${namespace}`);
  }
  const crd = `CustomResourceDefinition ${peprStoreCrd.metadata.name}`;
  const getCrd = () => K8s(kind.CustomResourceDefinition).Get(peprStoreCrd.metadata.name);
  if (!(await exists(getCrd, crd))) {
    await create(() => K8s(kind.CustomResourceDefinition).Apply(peprStoreCrd as never), crd);
    log.info(`created ${crd}`);
  }
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const live = await getCrd();
    if (live.status?.conditions?.some((c) => c.type === "Established" && c.status === "True")) return;
    if (Date.now() > deadline) throw new Error(`${crd} did not become Established within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/**
 * Points SSL_KEY_PATH / SSL_CERT_PATH at a key pair: the given paths, Pepr's default /etc/certs
 * (a mounted TLS Secret), or a self-signed pair made with openssl in a temporary directory.
 */
export function ensureTls(log: Logger): { keyPath: string; certPath: string } {
  const given = { keyPath: process.env.SSL_KEY_PATH, certPath: process.env.SSL_CERT_PATH };
  if (given.keyPath && given.certPath && existsSync(given.keyPath) && existsSync(given.certPath)) {
    return { keyPath: given.keyPath, certPath: given.certPath };
  }
  const mounted = { keyPath: "/etc/certs/tls.key", certPath: "/etc/certs/tls.crt" };
  let paths = mounted;
  if (!existsSync(mounted.keyPath) || !existsSync(mounted.certPath)) {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-operator-tls-"));
    paths = { keyPath: join(dir, "tls.key"), certPath: join(dir, "tls.crt") };
    // Pepr serves only /healthz and /metrics in watch mode: a self-signed certificate is enough.
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365"].concat([
        "-keyout",
        paths.keyPath,
        "-out",
        paths.certPath,
        "-subj",
        "/CN=turnpike-operator",
        "-addext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1",
      ]),
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    log.info({ dir }, "generated a self-signed TLS key pair for the health server");
  }
  process.env.SSL_KEY_PATH = paths.keyPath;
  process.env.SSL_CERT_PATH = paths.certPath;
  return paths;
}

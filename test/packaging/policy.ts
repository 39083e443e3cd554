/**
 * The rules every rendered manifest must follow, as functions returning readable problems (an
 * empty list means compliant): hardened pods, and connection URLs and credentials only from Secrets.
 */
import { containersOf, podSpecs, type Manifest } from "./tools.js";

/**
 * Pod and container security: non-root (a non-zero UID), read-only root filesystem, no privilege
 * escalation, every capability dropped, RuntimeDefault seccomp, no host namespaces or hostPath,
 * CPU and memory requests and limits on every container.
 */
export function podSecurityProblems(objects: readonly Manifest[]): string[] {
  const problems: string[] = [];
  for (const { owner, spec } of podSpecs(objects)) {
    const pod = spec.securityContext ?? {};
    for (const host of ["hostNetwork", "hostPID", "hostIPC"]) {
      if (spec[host]) problems.push(`${owner}: ${host} is set`);
    }
    for (const volume of spec.volumes ?? []) {
      if (volume.hostPath) problems.push(`${owner}: volume ${volume.name} is a hostPath`);
    }
    for (const c of containersOf(spec)) {
      const where = `${owner} container ${c.name}`;
      const sc = c.securityContext ?? {};
      const runAsNonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
      const runAsUser = sc.runAsUser ?? pod.runAsUser;
      const seccomp = sc.seccompProfile?.type ?? pod.seccompProfile?.type;
      if (runAsNonRoot !== true) problems.push(`${where}: runAsNonRoot is not true`);
      if (runAsUser === 0) problems.push(`${where}: runs as UID 0`);
      if (sc.readOnlyRootFilesystem !== true) problems.push(`${where}: readOnlyRootFilesystem is not true`);
      if (sc.allowPrivilegeEscalation !== false)
        problems.push(`${where}: allowPrivilegeEscalation is not false`);
      if (sc.privileged) problems.push(`${where}: privileged`);
      if (!(sc.capabilities?.drop ?? []).includes("ALL")) problems.push(`${where}: capabilities not dropped`);
      if ((sc.capabilities?.add ?? []).length > 0) problems.push(`${where}: adds capabilities`);
      if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
        problems.push(`${where}: no seccomp profile`);
      for (const kind of ["requests", "limits"] as const) {
        for (const resource of ["cpu", "memory"]) {
          if (c.resources?.[kind]?.[resource] === undefined)
            problems.push(`${where}: no ${resource} ${kind}`);
        }
      }
      // A read-only root filesystem needs a writable /tmp for anything that makes temporary files.
      const mounts: string[] = (c.volumeMounts ?? []).map((m: { mountPath: string }) => m.mountPath);
      if (!mounts.includes("/tmp")) problems.push(`${where}: no writable /tmp mount`);
    }
  }
  return problems;
}

/** Environment variables that carry connection URLs or credentials: they must come from a Secret. */
const SECRET_ENV = /(_URL$|PASSWORD|SECRET|TOKEN|CREDENTIAL|API_?KEY)/;
/**
 * Settings whose names look secret but whose values are not: URLs without credentials (checked
 * separately) and the name of the runtime Secret.
 */
const LITERAL_URL_ENV = new Set([
  "TURNPIKE_PROMETHEUS_URL",
  "TURNPIKE_JWT_JWKS_URL",
  "TURNPIKE_RUNTIME_SECRET",
]);
/** `scheme://user:password@host`: a URL carrying a password. */
const URL_WITH_PASSWORD = /[a-z][a-z0-9+.-]*:\/\/[^/\s:@"']*:[^@\s/"']+@/i;

/**
 * Secrets stay out of manifests: no Secret objects with data, connection URLs and credentials only
 * through secretKeyRef/secretRef, and no URL carrying a password anywhere in the text.
 */
export function plaintextSecretProblems(objects: readonly Manifest[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const name = `${o.kind}/${o.metadata.name}`;
    if (o.kind === "Secret") problems.push(`${name}: manifests must not carry Secrets (use existingSecret)`);
    const text = JSON.stringify(o);
    const match = URL_WITH_PASSWORD.exec(text);
    if (match) problems.push(`${name}: a URL with a password: ${match[0]}`);
  }
  for (const { owner, spec } of podSpecs(objects)) {
    for (const c of containersOf(spec)) {
      for (const env of c.env ?? []) {
        if (!SECRET_ENV.test(env.name) || LITERAL_URL_ENV.has(env.name)) continue;
        if (env.value !== undefined || !env.valueFrom?.secretKeyRef) {
          problems.push(`${owner} container ${c.name}: ${env.name} is not read from a Secret`);
        }
      }
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) problems.push(`${owner} container ${c.name}: envFrom a ConfigMap`);
      }
    }
  }
  return problems;
}

/** Problems in a values file or any text: URLs with passwords and password-like keys with values. */
export function valuesSecretProblems(text: string, source: string): string[] {
  const problems: string[] = [];
  const url = URL_WITH_PASSWORD.exec(text);
  if (url) problems.push(`${source}: a URL with a password: ${url[0]}`);
  for (const line of text.split("\n")) {
    const m = /^\s*([A-Za-z_-]*(password|passwd|secret|token|apikey|api-key)[A-Za-z_-]*)\s*:\s*(\S.*)$/i.exec(
      line,
    );
    if (!m) continue;
    const key = m[1]!;
    const value = m[3]!.trim();
    // Names of Secrets are fine: that is how credentials are referenced.
    if (/^(existingSecret|tlsSecret|secretName|imagePullSecrets)$/i.test(key)) continue;
    if (value.startsWith("#") || /^(\[\]|\{\}|""|''|null|~)(\s*#.*)?$/.test(value)) continue;
    problems.push(`${source}: ${key} has an inline value`);
  }
  return problems;
}

/**
 * The few apiserver calls the node agent makes, over node:https with the kubeconfig's client cert
 * (or token) and CA: enough for a kubelet's job without pulling a client library's watch machinery.
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { load } from "js-yaml";

export class KubeApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

interface KubeconfigFile {
  "current-context"?: string;
  contexts: Array<{ name: string; context: { cluster: string; user: string } }>;
  clusters: Array<{ name: string; cluster: { server: string; "certificate-authority-data"?: string } }>;
  users: Array<{
    name: string;
    user: { "client-certificate-data"?: string; "client-key-data"?: string; token?: string };
  }>;
}

const fromB64 = (data?: string) => (data ? Buffer.from(data, "base64") : undefined);

export class KubeApi {
  readonly #server: URL;
  readonly #agent: Agent;
  readonly #token?: string;

  constructor(kubeconfigPath: string) {
    const file = load(readFileSync(kubeconfigPath, "utf8")) as KubeconfigFile;
    const context = file.contexts.find((c) => c.name === file["current-context"]) ?? file.contexts[0];
    const cluster = file.clusters.find((c) => c.name === context?.context.cluster)?.cluster;
    const user = file.users.find((u) => u.name === context?.context.user)?.user ?? {};
    if (!cluster) throw new Error(`${kubeconfigPath}: no cluster for the current context`);
    this.#server = new URL(cluster.server);
    this.#token = user.token;
    this.#agent = new Agent({
      keepAlive: true,
      maxSockets: 4,
      ca: fromB64(cluster["certificate-authority-data"]),
      cert: fromB64(user["client-certificate-data"]),
      key: fromB64(user["client-key-data"]),
    });
  }

  /** One request; resolves the parsed JSON body, throws KubeApiError on a non-2xx answer. */
  call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<T> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request(
        new URL(path, this.#server),
        {
          method,
          agent: this.#agent,
          timeout: 30_000,
          headers: {
            accept: "application/json",
            ...(payload ? { "content-type": contentType, "content-length": Buffer.byteLength(payload) } : {}),
            ...(this.#token ? { authorization: `Bearer ${this.#token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) {
              resolve((text ? JSON.parse(text) : undefined) as T);
            } else {
              const message = (() => {
                try {
                  return (JSON.parse(text) as { message?: string }).message ?? text;
                } catch {
                  return text;
                }
              })();
              reject(new KubeApiError(`${method} ${path}: ${status} ${message}`, status));
            }
          });
        },
      );
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.end(payload);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

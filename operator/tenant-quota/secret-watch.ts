/**
 * Re-reconciles the TenantQuotas that read a Secret when it changes, so a new, rotated or revoked
 * API key takes effect in seconds instead of at the next resync.
 *
 * A metadata-only watch (PartialObjectMetadata, as controller-runtime's metadata watches do): the
 * apiserver sends each Secret's metadata, never its data. A Pepr or kubernetes-fluent-client watch
 * would receive every Secret of the cluster with its values, keep them in its cache and (Pepr, at
 * debug level) log them. Only the reconciler reads the referenced Secrets, one at a time.
 */
import { request, type RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "../../runtime/shared/logger.js";
import type { SecretIndex } from "./secret-index.js";

const ACCEPT_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
const ACCEPT_ONE = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const WATCH_TIMEOUT_SECONDS = 300;

export interface SecretWatch {
  close(): void;
}

interface Metadata {
  namespace?: string;
  name?: string;
  resourceVersion?: string;
}

class Gone extends Error {}

/**
 * Watches Secret metadata in `namespaces` (all when empty) and calls `enqueue` with each
 * TenantQuota of `index` that reads a Secret that was added, changed or deleted. After every
 * (re)list it also enqueues the readers of every listed Secret, covering changes missed while
 * disconnected.
 */
export async function watchApiKeySecrets(
  index: SecretIndex,
  enqueue: (namespace: string, quota: string) => void,
  namespaces: readonly string[],
  log: Logger,
  retryMs = 2000,
): Promise<SecretWatch> {
  let closed = false;
  const active = new Set<{ destroy(): void }>();
  const notify = (metadata: Metadata | undefined) => {
    if (!metadata?.namespace || !metadata.name) return;
    for (const quota of index.quotasReading(metadata.namespace, metadata.name))
      enqueue(metadata.namespace, quota);
  };

  const get = async (path: string, accept: string, onLine?: (line: string) => void): Promise<string> => {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const server = kc.getCurrentCluster()?.server;
    if (!server) throw new Error("no current cluster in the kubeconfig");
    const url = new URL(path, server);
    const options: RequestOptions = { method: "GET", headers: { accept } };
    await kc.applyToHTTPSOptions(options);
    return new Promise((resolve, reject) => {
      const req = request(url, options, (res) => {
        if (res.statusCode === 410) return reject(new Gone("resource version too old"));
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`GET ${url.pathname}: HTTP ${res.statusCode}`));
        }
        res.setEncoding("utf8");
        let buffer = "";
        res.on("data", (chunk: string) => {
          buffer += chunk;
          if (!onLine) return;
          try {
            for (let nl = buffer.indexOf("\n"); nl >= 0; nl = buffer.indexOf("\n")) {
              const line = buffer.slice(0, nl).trim();
              buffer = buffer.slice(nl + 1);
              if (line) onLine(line);
            }
          } catch (error) {
            reject(error);
            req.destroy();
          }
        });
        res.on("end", () => resolve(buffer));
        res.on("error", reject);
      });
      active.add(req);
      req.on("close", () => active.delete(req));
      req.on("error", reject);
      req.end();
    });
  };

  const run = async (namespace: string | undefined) => {
    const base = namespace ? `/api/v1/namespaces/${namespace}/secrets` : "/api/v1/secrets";
    let resourceVersion: string | undefined;
    let failures = 0;
    while (!closed) {
      try {
        if (!resourceVersion) {
          const list = JSON.parse(await get(base, ACCEPT_LIST)) as {
            metadata: { resourceVersion: string };
            // An empty list comes back as `"items": null`.
            items: { metadata: Metadata }[] | null;
          };
          resourceVersion = list.metadata.resourceVersion;
          for (const item of list.items ?? []) notify(item.metadata);
        }
        const query = `watch=1&allowWatchBookmarks=true&timeoutSeconds=${WATCH_TIMEOUT_SECONDS}`;
        await get(`${base}?${query}&resourceVersion=${resourceVersion}`, ACCEPT_ONE, (line) => {
          const event = JSON.parse(line) as { type: string; object: { code?: number; metadata?: Metadata } };
          if (event.type === "ERROR") {
            if (event.object.code === 410) throw new Gone("resource version too old");
            throw new Error(`watch error ${event.object.code}`);
          }
          if (event.object.metadata?.resourceVersion) resourceVersion = event.object.metadata.resourceVersion;
          if (event.type !== "BOOKMARK") notify(event.object.metadata);
        });
        failures = 0;
      } catch (error) {
        if (closed) return;
        if (error instanceof Gone) {
          resourceVersion = undefined;
          continue;
        }
        failures += 1;
        // Only the message: never a payload.
        log.warn({ namespace, error: (error as Error).message }, "Secret watch failed; retrying");
        await new Promise((r) => setTimeout(r, Math.min(30_000, retryMs * 2 ** Math.min(failures - 1, 4))));
      }
    }
  };

  const scopes = namespaces.length ? [...namespaces] : [undefined];
  // The first list of each scope must succeed (permissions, connectivity) before start-up goes on.
  for (const scope of scopes) {
    const path = scope ? `/api/v1/namespaces/${scope}/secrets?limit=1` : "/api/v1/secrets?limit=1";
    await get(path, ACCEPT_LIST).catch((cause) => {
      throw new Error(`listing Secrets${scope ? ` in ${scope}` : ""}`, { cause });
    });
  }
  for (const scope of scopes) void run(scope);
  return {
    close() {
      closed = true;
      for (const req of active) req.destroy();
    },
  };
}

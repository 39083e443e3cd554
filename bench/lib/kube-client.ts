/**
 * A minimal HTTPS client for the throwaway apiserver, for the benchmark's own requests (creating
 * the InferenceModels, polling their status, playing the Deployment controller). It sends its own
 * User-Agent, so the audit log tells the benchmark's writes from the operator's.
 */
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { join } from "node:path";

export const BENCH_USER_AGENT = "turnpike-bench";

export class KubeClient {
  private readonly agent: Agent;

  constructor(
    private readonly server: string,
    stateDir: string,
  ) {
    const pki = join(stateDir, "pki");
    this.agent = new Agent({
      ca: readFileSync(join(pki, "ca.crt")),
      cert: readFileSync(join(pki, "admin.crt")),
      key: readFileSync(join(pki, "admin.key")),
      keepAlive: true,
      maxSockets: 16,
    });
  }

  /** GETs a plain-text path (e.g. /metrics); throws unless 2xx. */
  text(path: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.server}${path}`, { agent: this.agent, timeout: 60_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
          else resolve(text);
        });
      });
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error(`GET ${path} timed out`)));
      req.end();
    });
  }

  /** Sends one request; resolves with the status and parsed JSON body. */
  call<T = unknown>(
    method: string,
    path: string,
    body?: unknown,
    contentType = "application/json",
  ): Promise<{ status: number; body: T }> {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(
        `${this.server}${path}`,
        {
          method,
          agent: this.agent,
          headers: {
            accept: "application/json",
            "user-agent": BENCH_USER_AGENT,
            ...(payload ? { "content-type": contentType, "content-length": payload.length } : {}),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            try {
              resolve({ status: res.statusCode ?? 0, body: (text ? JSON.parse(text) : undefined) as T });
            } catch {
              reject(new Error(`${method} ${path}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
            }
          });
        },
      );
      req.on("error", reject);
      req.on("timeout", () => req.destroy(new Error(`${method} ${path} timed out`)));
      req.end(payload);
    });
  }

  /** Like call(), but throws unless the status is 2xx. */
  async ok<T = unknown>(method: string, path: string, body?: unknown, contentType?: string): Promise<T> {
    const result = await this.call<T>(method, path, body, contentType);
    if (result.status < 200 || result.status > 299) {
      throw new Error(
        `${method} ${path}: HTTP ${result.status} ${JSON.stringify(result.body).slice(0, 300)}`,
      );
    }
    return result.body;
  }

  /**
   * Lists `path`, reports every item as ADDED, then watches from the list's resourceVersion. A
   * watch the apiserver ends (its watch cache re-initializing, a timeout, an ERROR event) is
   * re-listed and re-watched, so a long round does not silently stop seeing changes. Returns stop().
   */
  async watch<T>(path: string, onEvent: (type: string, object: T) => void): Promise<() => void> {
    let stopped = false;
    let current: ReturnType<typeof request> | undefined;
    const separator = path.includes("?") ? "&" : "?";
    const start = async (): Promise<void> => {
      const list = await this.ok<{ metadata: { resourceVersion: string }; items: T[] }>("GET", path);
      if (stopped) return;
      for (const item of list.items) onEvent("ADDED", item);
      const url = `${this.server}${path}${separator}watch=1&resourceVersion=${list.metadata.resourceVersion}&allowWatchBookmarks=false`;
      const req = request(url, {
        agent: this.agent,
        headers: { accept: "application/json", "user-agent": BENCH_USER_AGENT },
      });
      current = req;
      let restarted = false;
      const restart = () => {
        if (stopped || restarted) return;
        restarted = true;
        req.destroy();
        setTimeout(() => void start().catch(restart), 500);
      };
      req.on("response", (res) => {
        let buffered = "";
        res.on("data", (chunk: Buffer) => {
          buffered += chunk.toString("utf8");
          let newline: number;
          while ((newline = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, newline).trim();
            buffered = buffered.slice(newline + 1);
            if (!line) continue;
            const event = JSON.parse(line) as { type: string; object: T };
            if (event.type === "ERROR") return restart();
            onEvent(event.type, event.object);
          }
        });
        res.on("end", restart);
        res.on("error", restart);
      });
      req.on("error", restart);
      req.end();
    };
    await start();
    return () => {
      stopped = true;
      current?.destroy();
    };
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function forEachLimited<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, lane));
}

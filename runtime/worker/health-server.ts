/** The worker's HTTP surface: /healthz (liveness), /readyz (model warm and consuming), /metrics. */
import Fastify from "fastify";
import type { Metrics } from "../shared/metrics.js";

/** Options of {@link startHealthServer}. */
export interface HealthServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** False once the broker connection is lost: the kubelet then restarts the pod. */
  isLive: () => boolean;
  /** True after warm-up while consuming. */
  isReady: () => boolean;
}

/** A listening health server. */
export interface HealthServer {
  url: string;
  close(): Promise<void>;
}

/** Listens on host:port (port 0 picks a free one). */
export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const app = Fastify({ logger: false });
  const probe = (ok: boolean, up: string, down: string) => ({
    code: ok ? 200 : 503,
    body: { status: ok ? up : down },
  });
  app.get("/healthz", async (_request, reply) => {
    const { code, body } = probe(options.isLive(), "ok", "broken");
    return reply.code(code).send(body);
  });
  app.get("/readyz", async (_request, reply) => {
    const { code, body } = probe(options.isReady(), "ready", "not ready");
    return reply.code(code).send(body);
  });
  app.get("/metrics", async (_request, reply) => {
    const text = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(text);
  });
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, close: () => app.close() };
}

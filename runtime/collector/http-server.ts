/** The collector's small HTTP surface: liveness, readiness and Prometheus metrics. */
import Fastify, { type FastifyInstance } from "fastify";
import type { Metrics } from "../shared/metrics.js";

export interface ProbeServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** Readiness: true while the collector consumes results. */
  isReady: () => boolean;
}

/** A started probe server and the URL it answers on. */
export interface ProbeServer {
  url: string;
  close(): Promise<void>;
}

/** Builds the routes (exported for tests that inject requests without a socket). */
export function buildProbeApp(options: Omit<ProbeServerOptions, "host" | "port">): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get("/healthz", async () => ({ status: "ok" }));
  app.get("/readyz", async (_request, reply) => {
    const ready = options.isReady();
    return reply.code(ready ? 200 : 503).send({ status: ready ? "ready" : "not ready" });
  });
  app.get("/metrics", async (_request, reply) => {
    const body = await options.metrics.registry.metrics();
    return reply.type(options.metrics.registry.contentType).send(body);
  });
  return app;
}

/** Listens on host:port (port 0 picks a free one). */
export async function startProbeServer(options: ProbeServerOptions): Promise<ProbeServer> {
  const app = buildProbeApp(options);
  await app.listen({ host: options.host, port: options.port });
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const host = options.host === "0.0.0.0" || options.host === "::" ? "127.0.0.1" : options.host;
  return { url: `http://${host.includes(":") ? `[${host}]` : host}:${port}`, close: () => app.close() };
}

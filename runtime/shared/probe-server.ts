/**
 * The small HTTP surface of the worker and the collector: /healthz (liveness), /readyz (readiness)
 * and /metrics; and {@link listenUrl}, which every role (the gateway too) reports where it listens.
 */
import Fastify, { type FastifyInstance } from "fastify";
import type { Metrics } from "./metrics.js";

export interface ProbeServerOptions {
  host: string;
  port: number;
  metrics: Metrics;
  /** Readiness, e.g. the model warm and consuming, or the collector consuming results. */
  isReady: () => boolean;
  /** Liveness; false makes the kubelet restart the pod. Default: always live. */
  isLive?: () => boolean;
}

/** A started probe server and the URL it answers on. */
export interface ProbeServer {
  url: string;
  close(): Promise<void>;
}

/** Builds the routes (exported for tests that inject requests without a socket). */
export function buildProbeApp(options: Omit<ProbeServerOptions, "host" | "port">): FastifyInstance {
  const app = Fastify({ logger: false });
  const probe = (ok: boolean, up: string, down: string) => ({ code: ok ? 200 : 503, status: ok ? up : down });
  app.get("/healthz", async (_request, reply) => {
    const { code, status } = probe(options.isLive?.() ?? true, "ok", "broken");
    return reply.code(code).send({ status });
  });
  app.get("/readyz", async (_request, reply) => {
    const { code, status } = probe(options.isReady(), "ready", "not ready");
    return reply.code(code).send({ status });
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
  return { url: await listenUrl(app, options.host, options.port), close: () => app.close() };
}

/** Listens on host:port (port 0 picks a free one) and returns the URL a local client reaches it on. */
export async function listenUrl(app: FastifyInstance, host: string, port: number): Promise<string> {
  await app.listen({ host, port });
  const address = app.server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  const local = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  return `http://${local.includes(":") ? `[${local}]` : local}:${bound}`;
}

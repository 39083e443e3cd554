/**
 * A kube-proxy stand-in for one Service under `make run`: a TCP listener on 127.0.0.1 that spreads
 * connections round-robin over the ready Pods the node agent runs for the Service's selector.
 * With no ready Pod a connection is closed at once, as a Service without endpoints refuses it.
 */
import { createServer, connect, type Server } from "node:net";
import type { NodeAgent } from "./agent.js";

export interface ServiceProxyOptions {
  agent: NodeAgent;
  namespace: string;
  selector: Record<string, string>;
  /** The Service's targetPort: a container port number or name. */
  targetPort: string;
  listenPort: number;
}

export async function startServiceProxy(options: ServiceProxyOptions): Promise<{ stop(): Promise<void> }> {
  let next = 0;
  const open = new Set<import("node:net").Socket>();
  const server: Server = createServer((client) => {
    open.add(client);
    client.once("close", () => open.delete(client));
    const ready = options.agent
      .endpoints()
      .filter(
        (e) =>
          e.namespace === options.namespace &&
          e.ready &&
          e.ports[options.targetPort] !== undefined &&
          Object.entries(options.selector).every(([k, v]) => e.labels[k] === v),
      );
    const target = ready[next++ % Math.max(ready.length, 1)];
    if (!target) return void client.destroy();
    const upstream = connect({ host: "127.0.0.1", port: target.ports[options.targetPort]! });
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.listenPort, "127.0.0.1", () => resolve());
  });
  return {
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      }),
  };
}

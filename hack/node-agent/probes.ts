/**
 * Startup, readiness and liveness probes of a local container, against its local ports: httpGet
 * and tcpSocket as the kubelet runs them; exec and grpc probes are not run here (they count as passing).
 */
import { connect } from "node:net";
import type { V1Container, V1Probe } from "@kubernetes/client-node";

/** A probe and when it next runs, with its consecutive results. */
export class ProbeState {
  #nextAt: number;
  #failures = 0;
  #successes = 0;

  constructor(
    readonly probe: V1Probe,
    startedAt: number,
  ) {
    this.#nextAt = startedAt + (probe.initialDelaySeconds ?? 0) * 1000;
  }

  due(now: number): boolean {
    return now >= this.#nextAt;
  }

  /** Records one result; returns "pass" or "fail" once its threshold is crossed, else undefined. */
  record(ok: boolean, now: number): "pass" | "fail" | undefined {
    this.#nextAt = now + (this.probe.periodSeconds ?? 10) * 1000;
    if (ok) {
      this.#failures = 0;
      this.#successes += 1;
      return this.#successes >= (this.probe.successThreshold ?? 1) ? "pass" : undefined;
    }
    this.#successes = 0;
    this.#failures += 1;
    return this.#failures >= (this.probe.failureThreshold ?? 3) ? "fail" : undefined;
  }
}

/** The local port behind a probe's port (a number or a named container port). */
function localPort(port: number | string | undefined, container: V1Container, ports: Map<number, number>) {
  const containerPort =
    typeof port === "number" || /^\d+$/.test(String(port))
      ? Number(port)
      : container.ports?.find((p) => p.name === port)?.containerPort;
  return containerPort === undefined ? undefined : ports.get(containerPort);
}

/** Runs a probe once against 127.0.0.1; true when it passes. */
export async function runProbe(
  probe: V1Probe,
  container: V1Container,
  ports: Map<number, number>,
): Promise<boolean> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) {
    const port = localPort(probe.httpGet.port as number | string, container, ports);
    if (port === undefined) return false;
    const scheme = (probe.httpGet.scheme ?? "HTTP").toLowerCase();
    try {
      const response = await fetch(`${scheme}://127.0.0.1:${port}${probe.httpGet.path ?? "/"}`, {
        signal: AbortSignal.timeout(timeoutMs),
        redirect: "manual",
      });
      await response.body?.cancel();
      return response.status >= 200 && response.status < 400;
    } catch {
      return false;
    }
  }
  if (probe.tcpSocket) {
    const port = localPort(probe.tcpSocket.port as number | string, container, ports);
    if (port === undefined) return false;
    return new Promise((resolve) => {
      const socket = connect({ host: "127.0.0.1", port, timeout: timeoutMs });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
      socket.once("timeout", () => {
        socket.destroy();
        resolve(false);
      });
    });
  }
  return true;
}

/**
 * The life of a role's process: start it, stop it gracefully on SIGTERM/SIGINT (a pod's
 * termination), and exit non-zero with the reason when it cannot start.
 */
import { existsSync, writeFileSync } from "node:fs";
import { logger } from "./logger.js";
import { traceStagesOf } from "./stage-trace.js";

/**
 * Where a failed start is explained for whoever watches the pod: the kubelet's termination message
 * file (the container's terminationMessagePath), which shows up in the Pod's container status.
 */
const TERMINATION_LOG = "/dev/termination-log";

/**
 * `<Reason>: <message>` (the reason of a typed error, e.g. ModelChecksumMismatch, else
 * StartFailed), then each cause; cut to the kubelet's 4096-byte limit.
 */
export function terminationMessage(err: unknown): string {
  const reason = (err as { reason?: unknown }).reason;
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause) parts.push(e.message);
  const text = `${typeof reason === "string" ? reason : "StartFailed"}: ${parts.join(": ") || String(err)}`;
  return Buffer.from(text).subarray(0, 4000).toString("utf8");
}

function writeTerminationMessage(err: unknown): void {
  // Only where the kubelet (or the local node agent) provides the file: never create one in /dev.
  const path =
    process.env.TURNPIKE_TERMINATION_LOG ?? (existsSync(TERMINATION_LOG) ? TERMINATION_LOG : undefined);
  if (!path) return;
  try {
    writeFileSync(path, terminationMessage(err));
  } catch {
    // Not writable: the log line says it all.
  }
}

export interface RunningRole {
  close(): Promise<void>;
  /** Resolves once the role serves (a worker after model warm-up); optional. */
  ready?: Promise<void>;
}

export async function runRole(role: string, start: () => Promise<RunningRole>): Promise<void> {
  const log = logger(`${role}-main`);
  traceStagesOf(role);
  try {
    const running = await start();
    const shutdown = (signal: string) => {
      log.info({ signal }, "shutting down: finishing in-flight work");
      running.close().then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, "shutdown failed");
          process.exit(1);
        },
      );
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
    await running.ready;
  } catch (err) {
    log.fatal({ err }, `${role} failed to start`);
    writeTerminationMessage(err);
    process.exit(1);
  }
}

/**
 * Which onnxruntime execution provider a worker's session runs on. `cuda` asks onnxruntime-node for
 * its CUDA execution provider on the pod's GPU; when this build cannot give it (the CUDA provider
 * library is not installed, the CUDA or cuDNN libraries or the driver are missing, no device), the
 * worker falls back to the CPU rather than refuse to serve, and reports the fallback: a warning,
 * the metric `turnpike_execution_provider_fallback`, and its consumer arguments, from which the
 * operator sets the InferenceModel's Degraded condition (reason ExecutionProviderUnavailable).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import type { ExecutionProvider, ProviderChoice } from "../../../shared/contracts/index.js";
import type { Logger } from "../../../shared/logger.js";

type Providers = NonNullable<InferenceSession.SessionOptions["executionProviders"]>;

/**
 * The CUDA device of the session: TURNPIKE_CUDA_DEVICE_ID, else 0. The NVIDIA device plugin gives a
 * container only its own GPUs (NVIDIA_VISIBLE_DEVICES), which CUDA numbers from 0, so 0 is the
 * pod's first GPU; the variable is for hosts that see more than theirs.
 */
export function cudaDeviceId(env: NodeJS.ProcessEnv): number {
  const raw = env.TURNPIKE_CUDA_DEVICE_ID?.trim();
  if (!raw) return 0;
  if (!/^\d{1,3}$/.test(raw)) throw new Error(`TURNPIKE_CUDA_DEVICE_ID must be a device number, got ${raw}`);
  return Number(raw);
}

/** The providers to ask onnxruntime for, in order (pure). */
export function providersFor(requested: ExecutionProvider, deviceId: number): Providers {
  return requested === "cuda" ? [{ name: "cuda", deviceId }] : ["cpu"];
}

/** Where onnxruntime-node's CUDA build puts its provider library, and whether it is there. */
export function cudaProviderLibrary(): { path: string; installed: boolean } {
  const binding = createRequire(import.meta.url).resolve("onnxruntime-node");
  const root = join(dirname(binding), ".."); // the package root (the entry point is dist/index.js)
  const path = join(
    root,
    "bin",
    "napi-v6",
    process.platform,
    process.arch,
    "libonnxruntime_providers_cuda.so",
  );
  return { path, installed: existsSync(path) };
}

/**
 * Opens a session on the requested provider, or on the CPU when that fails: `open` creates the
 * session with the given providers. Errors of a CPU session are not caught (the model is broken).
 */
export async function openWithProvider<T>(
  requested: ExecutionProvider,
  deviceId: number,
  open: (providers: Providers) => Promise<T>,
  log: Logger,
): Promise<{ session: T; choice: ProviderChoice }> {
  if (requested === "cpu")
    return { session: await open(providersFor("cpu", deviceId)), choice: { requested, used: "cpu" } };
  try {
    const session = await open(providersFor(requested, deviceId));
    log.info({ provider: requested, deviceId }, "session runs on the CUDA execution provider");
    return { session, choice: { requested, used: requested, deviceId } };
  } catch (error) {
    const library = cudaProviderLibrary();
    const reason = library.installed
      ? `onnxruntime could not start its CUDA execution provider on device ${deviceId}: ${messageOf(error)}`
      : "this runtime image has no CUDA build of onnxruntime-node (libonnxruntime_providers_cuda.so is " +
        "missing); use the CUDA image variant in spec.runtime.image";
    log.warn({ requested, deviceId, reason }, "execution provider unavailable; running on the CPU");
    const session = await open(providersFor("cpu", deviceId));
    return { session, choice: { requested, used: "cpu", deviceId, reason } };
  }
}

function messageOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0]!.slice(0, 300);
}

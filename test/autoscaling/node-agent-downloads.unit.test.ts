// What a downloaded (https://, s3://) model needs from the node agent that runs `make run`'s pods:
// its emptyDir as a local directory the download-dir variable points into, and the worker's
// termination message in the container's terminated state, where the operator reads the reason.
import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { V1Pod } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { ContainerRunner } from "../../hack/node-agent/container.js";
import type { KubeApi } from "../../hack/node-agent/kube-api.js";
import { localiseEnv, syncVolumes } from "../../hack/node-agent/pod-spec.js";

const worker = {
  name: "worker",
  image: "turnpike-runtime",
  volumeMounts: [{ name: "model", mountPath: "/model-download" }],
};

describe("node agent and downloaded models", () => {
  it("gives an emptyDir a local directory, and the download dir points into it", async () => {
    const podDir = mkdtempSync(join(tmpdir(), "turnpike-pod-"));
    const pod: V1Pod = {
      metadata: { name: "p", namespace: "ns" },
      spec: { containers: [worker], volumes: [{ name: "model", emptyDir: {} }] },
    };
    // An emptyDir needs nothing from the apiserver.
    const dirs = await syncVolumes(undefined as unknown as KubeApi, pod, podDir, join(podDir, "pvc"));
    expect(statSync(dirs.get("model")!).isDirectory()).toBe(true);
    const env = localiseEnv({ TURNPIKE_MODEL_DOWNLOAD_DIR: "/model-download" }, worker, dirs, new Map());
    expect(env.TURNPIKE_MODEL_DOWNLOAD_DIR).toBe(dirs.get("model"));
  });

  it("reports what the process wrote to its termination message file when it exits", async () => {
    const dir = mkdtempSync(join(tmpdir(), "turnpike-pod-"));
    const script =
      "require('fs').writeFileSync(process.env.TURNPIKE_TERMINATION_LOG, " +
      "'ModelChecksumMismatch: digests differ'); process.exit(1)";
    const runner = new ContainerRunner({
      container: worker,
      restartPolicy: "Never",
      ports: new Map(),
      dir,
      prepare: async () => ({ command: process.execPath, args: ["-e", script], env: {}, cwd: dir }),
      graceSeconds: () => 1,
      say: () => undefined,
    });
    await runner.start();
    for (let i = 0; i < 100 && runner.running; i++) await new Promise((r) => setTimeout(r, 50));
    expect(runner.status("turnpike-runtime").state?.terminated).toMatchObject({
      exitCode: 1,
      reason: "Error",
      message: "ModelChecksumMismatch: digests differ",
    });
  });
});

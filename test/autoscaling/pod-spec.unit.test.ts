// The node agent's view of a container: the runtime image's role as an entry point, other images
// refused clearly, mount paths and container ports rewritten to local ones.
import { describe, expect, it } from "vitest";
import { ContainerConfigError, entryPoint, localiseEnv } from "../../hack/node-agent/pod-spec.js";
import { ROLE_NODE_FLAGS, runtimeCommand } from "../../runtime/shared/node-flags.js";

const worker = {
  name: "worker",
  image: "ghcr.io/turnpike-dev/turnpike-runtime:0.1.0",
  args: ["worker"],
  ports: [{ name: "http", containerPort: 8080 }],
  volumeMounts: [{ name: "runtime-config", mountPath: "/etc/turnpike", readOnly: true }],
};

describe("node agent pod spec", () => {
  it("runs the runtime image's role from the repository", () => {
    const entry = entryPoint(worker, "/repo");
    expect(entry.args).toEqual(["--import", "tsx", "/repo/runtime/worker/main.ts"]);
    const byEnv = entryPoint(
      { ...worker, args: undefined, env: [{ name: "TURNPIKE_ROLE", value: "gateway" }] },
      "/repo",
    );
    expect(byEnv.args.at(-1)).toBe("/repo/runtime/gateway/main.ts");
  });

  it("starts the role with the node flags of the container's command, as the image would", () => {
    const entry = entryPoint({ ...worker, command: runtimeCommand("worker") }, "/repo");
    expect(entry.args).toEqual([
      ...ROLE_NODE_FLAGS.worker,
      "--import",
      "tsx",
      "/repo/runtime/worker/main.ts",
    ]);
    expect(ROLE_NODE_FLAGS.worker.length).toBeGreaterThan(0);
  });

  it("refuses other images and unknown roles with a reason", () => {
    expect(() => entryPoint({ ...worker, image: "nginx:1.27" }, "/repo")).toThrow(ContainerConfigError);
    expect(() => entryPoint({ ...worker, args: ["shell"] }, "/repo")).toThrow(/unknown runtime role "shell"/);
  });

  it("points mounted paths at the volume's directory and ports at their local port", () => {
    const env = localiseEnv(
      { TURNPIKE_CONFIG: "/etc/turnpike/runtime.json", TURNPIKE_PORT: "8080", OTHER: "8080", TMP: "/tmp" },
      worker,
      new Map([["runtime-config", "/state/pods/p/volumes/runtime-config"]]),
      new Map([[8080, 41234]]),
    );
    expect(env).toEqual({
      TURNPIKE_CONFIG: "/state/pods/p/volumes/runtime-config/runtime.json",
      TURNPIKE_PORT: "41234",
      OTHER: "8080",
      TMP: "/tmp",
    });
  });
});

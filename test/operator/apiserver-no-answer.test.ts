/**
 * A request to the apiserver that gets no answer (connection refused, or reset before any reply)
 * is retried, not reported as the apiserver's verdict. kubernetes-fluent-client returns such a
 * failure with a made-up status 400, which the reconcilers used to take for "bad request": the
 * model went Degraded "ApplyFailed" and stayed so until the next change or resync. Real sockets
 * here (a closed port, a server that drops every connection) against the real apiserver's real
 * 422 for contrast.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubernetesObject } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createChild } from "../../operator/shared/child-create.js";
import { apiChildReader } from "../../operator/shared/child-reader.js";
import { applyChildren, CHILD_KINDS } from "../../operator/shared/children.js";
import { describeError, httpStatusOf, isRetryable, permanentCause } from "../../operator/shared/errors.js";
import { createNamespace, deleteNamespace } from "../harness/kube.js";
import { uniqueName } from "../harness/services.js";

const harnessKubeconfig = process.env.KUBECONFIG!;
let dir: string;
let dropping: Server;
let namespace: string;
const kubeconfigs: Record<"refused" | "dropped", string> = { refused: "", dropped: "" };

/** A copy of the harness kubeconfig whose server is https://127.0.0.1:`port`. */
function kubeconfigFor(name: string, port: number): string {
  const text = readFileSync(harnessKubeconfig, "utf8").replace(
    /server: https:\/\/[^\s]+/,
    `server: https://127.0.0.1:${port}`,
  );
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

const listening = (server: Server) =>
  new Promise<number>((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port)),
  );

/** Runs `call` with kubernetes-fluent-client pointed at `kubeconfig`. */
async function against<T>(kubeconfig: string, call: () => Promise<T>): Promise<T> {
  process.env.KUBECONFIG = kubeconfig;
  try {
    return await call();
  } finally {
    process.env.KUBECONFIG = harnessKubeconfig;
  }
}

const deployment = (name: string, replicas: unknown): KubernetesObject =>
  ({
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: { name, namespace, labels: { "turnpike.dev/owner": "no-answer" } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: "c", image: "turnpike/runtime:test" }] },
      },
    },
  }) as KubernetesObject;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "turnpike-no-answer-"));
  // A port nothing listens on: taken, then let go.
  const closed = createServer();
  const closedPort = await listening(closed);
  await new Promise((resolve) => closed.close(resolve));
  kubeconfigs.refused = kubeconfigFor("refused", closedPort);
  // A server that accepts and drops every connection, as a restarting apiserver or a load
  // balancer's idle reset does.
  dropping = createServer((socket) => socket.destroy());
  kubeconfigs.dropped = kubeconfigFor("dropped", await listening(dropping));
  namespace = await createNamespace(uniqueName("no-answer"));
});

afterAll(async () => {
  await new Promise((resolve) => dropping?.close(resolve));
  rmSync(dir, { recursive: true, force: true });
  if (namespace) await deleteNamespace(namespace);
});

describe("a request the apiserver never answered", () => {
  for (const way of ["refused", "dropped"] as const) {
    it(`(${way}) reads as no answer, is retried, and says so`, async () => {
      const reading = await against(kubeconfigs[way], () =>
        apiChildReader.get(CHILD_KINDS.Deployment, namespace, "absent"),
      ).catch((e: unknown) => e);
      const applying = await against(kubeconfigs[way], () =>
        applyChildren(namespace, [deployment("w", 1)], { "turnpike.dev/owner": "no-answer" }, []),
      ).catch((e: unknown) => e);
      const creating = await against(kubeconfigs[way], () =>
        createChild(CHILD_KINDS.Deployment, namespace, deployment("w", 1)),
      ).catch((e: unknown) => e);
      for (const error of [reading, applying, creating]) {
        expect(error).toBeInstanceOf(Error);
        expect(permanentCause(error)).toBeUndefined();
        expect(isRetryable(error)).toBe(true);
        expect(describeError(error)).toContain("no answer from the apiserver");
        expect(describeError(error)).not.toMatch(/HTTP 400/);
      }
      // What the client throws itself carries no status to read.
      let cause: unknown = reading;
      while ((cause as { cause?: unknown }).cause) cause = (cause as { cause?: unknown }).cause;
      expect(httpStatusOf(cause)).toBeUndefined();
    });
  }

  it("leaves the apiserver's own 4xx verdicts permanent", async () => {
    // The same calls against the real apiserver: a Deployment it refuses (422) is not retried.
    const refused = await applyChildren(namespace, [deployment("w", "many")], {}, []).catch(
      (e: unknown) => e,
    );
    expect(describeError(refused)).toMatch(/applying Deployment\/w/);
    expect(isRetryable(refused)).toBe(false);
    const created = await createChild(CHILD_KINDS.Deployment, namespace, deployment("v", "many")).catch(
      (e: unknown) => e,
    );
    expect(httpStatusOf(created)).toBeGreaterThanOrEqual(400);
    expect(httpStatusOf(created)).toBeLessThan(500);
    expect(isRetryable(created)).toBe(false);
    // And a valid one goes through the same calls.
    await applyChildren(namespace, [deployment("w", 1)], { "turnpike.dev/owner": "no-answer" }, []);
    expect((await apiChildReader.get(CHILD_KINDS.Deployment, namespace, "w"))?.metadata?.name).toBe("w");
  });
});

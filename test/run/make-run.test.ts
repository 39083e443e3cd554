/**
 * Drives `make run`'s entry point end to end: its own control plane, the operator, samples/, the
 * operator-rendered workers, gateway and collector. A real OCR request must come back with the
 * right text, and its tokens must show in PostgreSQL, in Redis and in the TenantQuota status.
 * Ctrl-C (SIGINT) must stop everything it started.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../hack/control-plane.js";
import { QuotaStore } from "../../runtime/shared/quota/index.js";
import { repoRoot } from "../harness/kube.js";
import { serviceUrls, uniqueName } from "../harness/services.js";

const runDir = mkdtempSync(join(tmpdir(), "turnpike-make-run-"));
const namespace = uniqueName("run");
let gatewayPort = 0;
let run: ChildProcess;
let output = "";

function readyWithin(ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`make run was not ready within ${ms} ms:\n${output}`)),
      ms,
    );
    const check = () => {
      if (output.includes("TURNPIKE_READY")) {
        clearTimeout(timer);
        resolve();
      }
    };
    run.stdout?.on("data", check);
    run.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`make run exited with ${code} before it was ready:\n${output}`));
    });
  });
}

function kubeconfig(): string {
  return join(runDir, "control-plane", "kubeconfig");
}

async function tenantQuotaStatus(name: string) {
  const { execFileSync } = await import("node:child_process");
  const binDir = process.env.TURNPIKE_KUBE_BIN!;
  const json = execFileSync(
    join(binDir, "kubectl"),
    ["--kubeconfig", kubeconfig(), "get", "tenantquota", name, "-n", namespace, "-o", "json"],
    { encoding: "utf8" },
  );
  return JSON.parse(json).status;
}

beforeAll(async () => {
  gatewayPort = await freePort();
  run = spawn(process.execPath, ["--import", "tsx", "hack/run.ts"], {
    cwd: repoRoot,
    env: {
      ...process.env,
      TURNPIKE_RUN_DIR: runDir,
      TURNPIKE_GATEWAY_PORT: String(gatewayPort),
      TURNPIKE_NAMESPACE: namespace,
      // make run's own control plane, not the test harness's.
      KUBECONFIG: "",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  run.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  run.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await readyWithin(240_000);
}, 260_000);

afterAll(async () => {
  if (run.exitCode === null) {
    run.kill("SIGKILL");
  }
  // Queues of this run's namespace on the shared broker.
  const { rabbitManagementUrl, rabbitUser, rabbitPassword } = serviceUrls();
  const auth = `Basic ${Buffer.from(`${rabbitUser}:${rabbitPassword}`).toString("base64")}`;
  const queues = (await (
    await fetch(`${rabbitManagementUrl}/api/queues`, { headers: { authorization: auth } })
  ).json()) as Array<{ name: string }>;
  for (const queue of queues.filter((q) => q.name.startsWith(`turnpike.${namespace}.`))) {
    await fetch(`${rabbitManagementUrl}/api/queues/%2F/${encodeURIComponent(queue.name)}`, {
      method: "DELETE",
      headers: { authorization: auth },
    });
  }
  rmSync(runDir, { recursive: true, force: true });
});

describe("make run", () => {
  it("prints a working request for the sample tenant", () => {
    expect(output).toMatch(/Turnpike is up in [\d.]+s/);
    expect(output).toContain(`http://127.0.0.1:${gatewayPort}/v2/models/ocr-rec/infer`);
    expect(output).toMatch(/ocr-rec\s+True\s+1/);
  });

  it("serves a real OCR request, and its tokens reach PostgreSQL, Redis and the TenantQuota status", async () => {
    const apiKey = /apiKey:\s*(\S+)/.exec(
      readFileSync(join(repoRoot, "samples/tenant-quota-free.yaml"), "utf8"),
    )![1];
    const body = readFileSync(join(runDir, "ocr-request.json"), "utf8");
    const response = await fetch(`http://127.0.0.1:${gatewayPort}/v2/models/ocr-rec/infer`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body,
    });
    expect(response.status).toBe(200);
    const result = (await response.json()) as {
      id: string;
      outputs: Array<{ name: string; data: unknown[] }>;
    };
    expect(result.outputs.find((o) => o.name === "text")?.data).toEqual(["Hello Turnpike"]);

    // The answer comes straight from the worker; the collector records and settles it right after.
    const db = new pg.Client({ connectionString: serviceUrls().databaseUrl });
    await db.connect();
    let rows: { charged_tokens: number }[] = [];
    for (let i = 0; i < 100 && rows.length === 0; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      ({ rows } = await db.query(
        "SELECT tenant, status, charged_tokens::int AS charged_tokens FROM turnpike.requests WHERE id = $1",
        [result.id],
      ));
    }
    await db.end();
    expect(rows).toEqual([{ tenant: "hobbyist", status: "succeeded", charged_tokens: expect.any(Number) }]);
    const charged = Number(rows[0]!.charged_tokens);
    expect(charged).toBeGreaterThan(0);

    const redis = new Redis(serviceUrls().redisUrl);
    // The collector settles right after its commit.
    let usage = await new QuotaStore(redis, namespace).usage("hobbyist");
    for (let i = 0; i < 50 && usage.inFlight !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      usage = await new QuotaStore(redis, namespace).usage("hobbyist");
    }
    redis.disconnect();
    expect(usage.tokensToday).toBe(charged);
    expect(usage.inFlight).toBe(0);

    // The operator refreshes usage on its resync (5 s under make run).
    let status: { usage?: { tokensToday?: number } } = {};
    for (let i = 0; i < 40 && status.usage?.tokensToday !== charged; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = await tenantQuotaStatus("hobbyist");
    }
    expect(status.usage?.tokensToday).toBe(charged);
  });

  it("serves the sample SmolLM2 on the OpenAI routes; its exact tokens reach the TenantQuota status", async () => {
    const apiKey = /primary:\s*(\S+)/.exec(
      readFileSync(join(repoRoot, "samples/tenant-quota-large.yaml"), "utf8"),
    )![1];
    const response = await fetch(`http://127.0.0.1:${gatewayPort}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: "smollm2",
        messages: [{ role: "user", content: "Say hello." }],
        max_tokens: 8,
        temperature: 0,
        seed: 1,
      }),
    });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { usage: { total_tokens: number } };
    expect(answer.usage.total_tokens).toBeGreaterThan(8);

    const redis = new Redis(serviceUrls().redisUrl);
    // The answer came straight from the worker; the collector settles right after.
    let usage = await new QuotaStore(redis, namespace).usage("acme");
    for (let i = 0; i < 50 && usage.inFlight !== 0; i++) {
      await new Promise((r) => setTimeout(r, 100));
      usage = await new QuotaStore(redis, namespace).usage("acme");
    }
    redis.disconnect();
    expect(usage.tokensToday).toBe(answer.usage.total_tokens);
    let status: { usage?: { tokensToday?: number } } = {};
    for (let i = 0; i < 40 && status.usage?.tokensToday !== answer.usage.total_tokens; i++) {
      await new Promise((r) => setTimeout(r, 500));
      status = await tenantQuotaStatus("acme");
    }
    expect(status.usage?.tokensToday).toBe(answer.usage.total_tokens);
  });

  it("stops everything it started on Ctrl-C", async () => {
    const exited = new Promise<number | null>((resolve) => run.once("exit", (code) => resolve(code)));
    run.kill("SIGINT");
    expect(await exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${gatewayPort}/v2/health/live`)).rejects.toThrow();
    // The services were running before make run started, so they are still running.
    const redis = new Redis(serviceUrls().redisUrl);
    expect(await redis.ping()).toBe("PONG");
    redis.disconnect();
  });
});

/**
 * What the images run, checked without a Docker engine: `tsc -p tsconfig.build.json` plus
 * docker/copy-assets.mjs emit runnable ESM for runtime/ and operator/ (with the SQL migrations), the
 * runtime's entry point docker/turnpike-runtime.mjs starts each role from that output (failing
 * clearly on bad config, never on module resolution), and the collector really migrates
 * PostgreSQL from the copied .sql files. The Dockerfiles are checked for what must hold in them.
 */
import { execFile, spawn } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "../harness/kube.js";
import { serviceUrls, uniqueName } from "../harness/services.js";
import { RUNTIME_IMAGE_ENTRY } from "../../runtime/shared/node-flags.js";

const execFileAsync = promisify(execFile);

/** A build like the image's: <tmp>/dist, <tmp>/docker/turnpike-runtime.mjs, package.json, node_modules. */
let app: string;

beforeAll(async () => {
  app = mkdtempSync(join(tmpdir(), "turnpike-image-"));
  const tsc = join(repoRoot, "node_modules/typescript/bin/tsc");
  await execFileAsync(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", join(app, "dist")], {
    cwd: repoRoot,
  });
  await execFileAsync(process.execPath, ["docker/copy-assets.mjs", join(app, "dist")], { cwd: repoRoot });
  mkdirSync(join(app, "docker"));
  cpSync(join(repoRoot, "docker/turnpike-runtime.mjs"), join(app, "docker/turnpike-runtime.mjs"));
  cpSync(join(repoRoot, "package.json"), join(app, "package.json"));
  symlinkSync(join(repoRoot, "node_modules"), join(app, "node_modules"), "dir");
}, 180_000);

afterAll(() => {
  if (app) rmSync(app, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  output: string;
}

/** Runs `node <args>` in the build; resolves when it exits, or kills it with SIGTERM once `until` shows up. */
function run(args: string[], env: NodeJS.ProcessEnv, until?: RegExp, timeoutMs = 30_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: app,
      env: { PATH: process.env.PATH, HOME: tmpdir(), TURNPIKE_PORT: "0", TURNPIKE_HOST: "127.0.0.1", ...env },
    });
    let output = "";
    let signalled = false;
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`node ${args.join(" ")} did not finish in ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString("utf8");
      if (until && !signalled && until.test(output)) {
        signalled = true; // once: a second SIGTERM would hit Node's default handler and kill it
        child.kill("SIGTERM");
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe("the compiled build (npm run build)", () => {
  it("emits ESM for runtime/ and operator/ and copies the SQL migrations", () => {
    for (const entry of ["runtime/gateway/main.js", "runtime/worker/main.js", "runtime/collector/main.js"]) {
      expect(existsSync(join(app, "dist", entry)), entry).toBe(true);
    }
    expect(existsSync(join(app, "dist/operator/main.js"))).toBe(true);
    const sources = readdirSync(join(repoRoot, "runtime/collector/db/migrations")).sort();
    expect(sources.length).toBeGreaterThan(0);
    expect(readdirSync(join(app, "dist/runtime/collector/db/migrations")).sort()).toEqual(sources);
    expect(readFileSync(join(app, "dist/runtime/gateway/main.js"), "utf8")).toMatch(/^import /m);
    expect(existsSync(join(app, "dist/runtime/gateway/main.test.js"))).toBe(false);
  });

  it("refuses an unknown role with a usage message", async () => {
    const result = await run(["docker/turnpike-runtime.mjs"], {});
    expect(result.code).toBe(64);
    expect(result.output).toMatch(/pass one of gateway, worker, collector/);
  });

  it.each(["gateway", "worker", "collector"])(
    "starts the %s, which fails clearly without its config file",
    async (role) => {
      const result = await run(["docker/turnpike-runtime.mjs", role], {
        TURNPIKE_CONFIG: join(app, "missing-runtime.json"),
      });
      expect(result.code).toBe(1);
      expect(result.output).not.toMatch(/ERR_MODULE_NOT_FOUND|Cannot find module|ERR_UNKNOWN_FILE_EXTENSION/);
      expect(result.output).toContain(`"role":"${role}"`);
      expect(result.output).toMatch(/reading runtime config .*missing-runtime\.json/);
    },
  );

  it("loads the operator's whole module graph", async () => {
    const result = await run(
      ["--input-type=module", "-e", 'await import("./dist/operator/module.js"); console.log("loaded")'],
      { PEPR_WATCH_MODE: "true" },
    );
    expect(result.output).toContain("loaded");
    expect(result.code).toBe(0);
  });

  it("runs the collector, which migrates PostgreSQL from the copied .sql files", async () => {
    const services = serviceUrls();
    const prefix = uniqueName("pkg-image");
    const schema = prefix.replace(/-/g, "_");
    const config = join(app, `${prefix}.json`);
    const { writeFileSync } = await import("node:fs");
    writeFileSync(config, JSON.stringify({ prefix, models: [], pipelines: [], tenants: [] }));
    try {
      const result = await run(
        ["docker/turnpike-runtime.mjs", "collector"],
        {
          TURNPIKE_CONFIG: config,
          TURNPIKE_AMQP_URL: services.amqpUrl,
          TURNPIKE_REDIS_URL: services.redisUrl,
          TURNPIKE_DATABASE_URL: services.databaseUrl,
          TURNPIKE_DB_SCHEMA: schema,
        },
        /collector started/,
      );
      expect(result.output).toContain("applied migrations");
      expect(result.output).toContain("shutting down");
      expect(result.code).toBe(0);
      const client = new pg.Client({ connectionString: services.databaseUrl });
      await client.connect();
      try {
        const tables = await client.query(
          "SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1",
          [schema],
        );
        expect(tables.rows.map((r) => r.table_name)).toContain("pgmigrations");
        expect(tables.rows.length).toBeGreaterThan(1);
      } finally {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        await client.end();
      }
    } finally {
      await deleteQueues(prefix);
    }
  });
});

/** Removes what the collector declared on the broker for `prefix` (management API). */
async function deleteQueues(prefix: string): Promise<void> {
  const { rabbitManagementUrl, rabbitUser, rabbitPassword } = serviceUrls();
  const auth = `Basic ${Buffer.from(`${rabbitUser}:${rabbitPassword}`).toString("base64")}`;
  const api = (path: string, method = "GET") =>
    fetch(`${rabbitManagementUrl}/api/${path}`, { method, headers: { authorization: auth } });
  for (const kind of ["queues", "exchanges"] as const) {
    const list = (await (await api(kind)).json()) as { name: string; vhost: string }[];
    for (const item of list.filter((q) => q.name.startsWith(`turnpike.${prefix}.`))) {
      await api(`${kind}/${encodeURIComponent(item.vhost)}/${encodeURIComponent(item.name)}`, "DELETE");
    }
  }
}

describe("Dockerfiles", () => {
  const dockerfile = (name: string) => readFileSync(join(repoRoot, name), "utf8");
  const instructions = (text: string) =>
    text
      .replace(/\\\n/g, " ")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));

  it.each(["Dockerfile.runtime", "Dockerfile.operator"])(
    "%s: pinned bases, non-root, no HEALTHCHECK",
    (name) => {
      const lines = instructions(dockerfile(name));
      const args = new Map(
        lines
          .filter((l) => l.startsWith("ARG ") && l.includes("="))
          .map((l) => l.slice(4).split("=") as [string, string]),
      );
      const from = lines.filter((l) => l.startsWith("FROM ")).map((l) => l.split(/\s+/)[1]!);
      expect(from.length).toBeGreaterThan(2); // multi-stage
      for (const image of from) {
        const resolved = image.replace(/^\$\{(\w+)\}$/, (_, arg: string) => args.get(arg) ?? image);
        const resolvedTwice = resolved.replace(
          /^\$\{(\w+)\}$/,
          (_, arg: string) => args.get(arg) ?? resolved,
        );
        if (/^(build|deps|node)$/.test(resolvedTwice)) continue; // an earlier stage
        expect(resolvedTwice, `${name}: FROM ${image}`).toMatch(
          /^[\w./-]+:\d+\.\d+\.\d+[\w.-]*(@sha256:[a-f0-9]{64})?$/,
        );
      }
      expect(lines.filter((l) => l.startsWith("USER ")).at(-1)).toBe("USER 10001:10001");
      expect(lines.some((l) => l.startsWith("HEALTHCHECK"))).toBe(false);
      expect(lines.some((l) => /npm ci --omit=dev/.test(l))).toBe(true);
      const entrypoint = JSON.parse(
        lines.find((l) => l.startsWith("ENTRYPOINT "))!.slice("ENTRYPOINT ".length),
      );
      expect(entrypoint[0]).toBe("node");
    },
  );

  it("the runtime image opts into onnxruntime-node's CUDA binaries only by build argument", () => {
    const text = dockerfile("Dockerfile.runtime");
    expect(text).toMatch(/^ARG ONNXRUNTIME_NODE_INSTALL=skip$/m);
    expect(text).toMatch(/ENV ONNXRUNTIME_NODE_INSTALL=\$\{ONNXRUNTIME_NODE_INSTALL\}/);
    // The entry point and the copied build output exist where the image expects them.
    // The worker Deployment's command names the same entry point (runtime/shared/node-flags.ts).
    expect(text).toContain(`ENTRYPOINT ["node", "${RUNTIME_IMAGE_ENTRY}"]`);
    expect(existsSync(join(repoRoot, "docker/turnpike-runtime.mjs"))).toBe(true);
    expect(dockerfile("Dockerfile.operator")).toContain('ENTRYPOINT ["node", "/app/dist/operator/main.js"]');
  });

  it.each(["Dockerfile.runtime", "Dockerfile.operator"])(
    "%s: every npm ci runs with patches/ copied in (its postinstall applies them)",
    (name) => {
      const lines = instructions(dockerfile(name));
      const installs = lines.flatMap((l, i) => (/\bnpm ci\b/.test(l) ? [i] : []));
      expect(installs.length).toBeGreaterThan(0);
      for (const at of installs) {
        const stage = lines.slice(0, at).findLastIndex((l) => l.startsWith("FROM "));
        expect(lines.slice(stage, at), `${name}: ${lines[at]}`).toContain("COPY patches/ patches/");
      }
    },
  );

  it(".dockerignore sends only what the Dockerfiles copy", () => {
    const ignore = readFileSync(join(repoRoot, ".dockerignore"), "utf8");
    expect(ignore).toMatch(/^\*$/m);
    for (const kept of [
      "package.json",
      "package-lock.json",
      ".npmrc",
      "patches/",
      "tsconfig.build.json",
      "docker/",
      "runtime/",
    ]) {
      expect(ignore).toContain(`!${kept}`);
    }
  });
});

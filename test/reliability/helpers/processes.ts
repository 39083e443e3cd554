/**
 * Runtime roles (gateway, worker, collector) as real child processes, `node --import tsx
 * runtime/<role>/main.ts`, so that `kill -9` is a real crash: no finally blocks, no graceful close,
 * sockets torn down by the kernel. Each process listens on a free port (TURNPIKE_PORT=0) and its
 * URL is read from its own "listening/ready/started" log line. Everything a process prints is kept
 * (for the plaintext-secret scan) and copied to a log file for debugging.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, type WriteStream } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../harness/kube.js";

export type Role = "gateway" | "worker" | "collector";

/** The log line (pino `msg`) that each role prints once it serves, carrying its `url`. */
const READY_MESSAGE: Record<Role, string> = {
  gateway: "gateway listening",
  worker: "worker ready",
  collector: "collector started",
};

/** One run of one role. */
export interface RoleProcess {
  role: Role;
  name: string;
  child: ChildProcess;
  /** Base URL once the role logged that it serves (rejects if it exits first). */
  ready: Promise<string>;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | NodeJS.Signals | null>;
  /** Everything the process printed (stdout and stderr). */
  output(): string;
  alive(): boolean;
  /** SIGKILL, then waits for the exit. */
  kill9(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `graceMs`, then waits for the exit. */
  stop(graceMs?: number): Promise<void>;
}

/** Spawns one role with `env` (merged over the test process's environment). */
export function spawnRole(
  role: Role,
  name: string,
  env: Record<string, string>,
  logDir: string,
  readyTimeoutMs = 60_000,
): RoleProcess {
  const child = spawn(process.execPath, ["--import", "tsx", `runtime/${role}/main.ts`], {
    cwd: repoRoot,
    env: { ...process.env, TURNPIKE_ROLE: role, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const chunks: Buffer[] = [];
  const file: WriteStream = createWriteStream(join(logDir, `${name}.log`), { flags: "a" });
  let pending = "";
  let resolveReady!: (url: string) => void;
  let rejectReady!: (error: Error) => void;
  const ready = new Promise<string>((resolve, reject) => {
    resolveReady = resolve;
    rejectReady = reject;
  });
  ready.catch(() => undefined); // observed by whoever awaits it
  const onData = (chunk: Buffer) => {
    chunks.push(chunk);
    file.write(chunk);
    pending += chunk.toString("utf8");
    let cut: number;
    while ((cut = pending.indexOf("\n")) >= 0) {
      const line = pending.slice(0, cut);
      pending = pending.slice(cut + 1);
      if (!line.includes(READY_MESSAGE[role])) continue;
      try {
        const parsed = JSON.parse(line) as { msg?: string; url?: string };
        if (parsed.msg === READY_MESSAGE[role] && parsed.url) resolveReady(parsed.url);
      } catch {
        // not a JSON log line
      }
    }
  };
  child.stdout!.on("data", onData);
  child.stderr!.on("data", onData);
  const exited = new Promise<number | NodeJS.Signals | null>((resolve) =>
    child.once("exit", (code, signal) => {
      file.end();
      rejectReady(new Error(`${name} exited (${signal ?? code}) before it was ready:\n${tail()}`));
      resolve(signal ?? code);
    }),
  );
  const timer = setTimeout(
    () => rejectReady(new Error(`${name} not ready within ${readyTimeoutMs} ms:\n${tail()}`)),
    readyTimeoutMs,
  );
  void ready.finally(() => clearTimeout(timer)).catch(() => undefined);
  const output = () => Buffer.concat(chunks).toString("utf8");
  const tail = () => output().split("\n").slice(-15).join("\n");
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    role,
    name,
    child,
    ready,
    exited,
    output,
    alive,
    async kill9() {
      if (alive()) child.kill("SIGKILL");
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (!alive()) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Plays a Deployment's restart policy for one role: every time its process exits without the test
 * having killed it on purpose, a new one is started (bounded). Records why each restart happened,
 * so the report can say which processes needed their supervisor rather than reconnecting in-process.
 */
export class Supervisor {
  current: RoleProcess;
  /** Unplanned exits that the supervisor answered with a restart. */
  readonly restarts: { at: number; exit: number | NodeJS.Signals | null }[] = [];
  /** Every process this supervisor ran, oldest first (their output is scanned for secrets). */
  readonly runs: RoleProcess[] = [];
  private closed = false;
  private generation = 0;

  constructor(
    private readonly launch: (generation: number) => RoleProcess,
    private readonly maxRestarts = 30,
  ) {
    this.current = this.start();
  }

  /** Kills the current process with SIGKILL (a planned crash: restarted only by restart()). */
  async kill9(): Promise<void> {
    const victim = this.current;
    this.planned.add(victim);
    await victim.kill9();
  }

  /** Starts a fresh process (after kill9, or to replace a live one). */
  async restart(): Promise<RoleProcess> {
    if (this.current.alive()) {
      this.planned.add(this.current);
      await this.current.kill9();
    }
    this.current = this.start();
    return this.current;
  }

  /** Stops the current process gracefully and stops supervising. */
  async stop(): Promise<void> {
    this.closed = true;
    await this.current.stop();
  }

  /** Output of every run so far. */
  output(): string {
    return this.runs.map((r) => r.output()).join("\n");
  }

  private readonly planned = new Set<RoleProcess>();

  /** Base URL of the newest run that became ready (a gateway's address changes with each run). */
  url: string | undefined;

  private start(): RoleProcess {
    const run = this.launch(this.generation++);
    this.runs.push(run);
    run.ready.then((url) => (this.url = url)).catch(() => undefined);
    void run.exited.then(async (exit) => {
      if (this.closed || this.planned.has(run) || run !== this.current) return;
      if (this.restarts.length >= this.maxRestarts) return;
      this.restarts.push({ at: Date.now(), exit });
      // Like a kubelet's crash-loop back-off, shortened: 0.5 s, 1 s, 2 s, then 2 s.
      await new Promise((r) =>
        setTimeout(r, Math.min(2_000, 500 * 2 ** Math.min(this.restarts.length - 1, 2))),
      );
      if (this.closed || run !== this.current) return;
      this.current = this.start();
    });
    return run;
  }
}

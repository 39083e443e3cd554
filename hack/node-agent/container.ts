/**
 * One container of a Pod as a local process: started, probed, restarted per restartPolicy with the
 * kubelet's crash-loop back-off (immediately, then 10 s doubling to 5 minutes, reset after 10
 * minutes of running), stopped with SIGTERM then SIGKILL after the grace period, and reported as a
 * V1ContainerStatus (state, lastState, restartCount, ready, started).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { V1Container, V1ContainerState, V1ContainerStatus } from "@kubernetes/client-node";
import { ProbeState, runProbe } from "./probes.js";
import { ContainerConfigError, type Entry } from "./pod-spec.js";

export interface Launch extends Entry {
  env: Record<string, string>;
  cwd: string;
}

export interface ContainerOptions {
  container: V1Container;
  restartPolicy: string;
  /** container port -> local port */
  ports: Map<number, number>;
  /** Where <name>.log and <name>.pid go. */
  dir: string;
  /** Resolves what to run, at every (re)start (env is re-read as the kubelet does). */
  prepare(): Promise<Launch>;
  graceSeconds(): number;
  say(line: string): void;
}

const BACKOFF_START_MS = 10_000;
const BACKOFF_MAX_MS = 300_000;
const BACKOFF_RESET_MS = 600_000;
/** RFC 3339 in whole seconds, as the apiserver stores it (client-node types these as Date; the wire has strings). */
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d+Z$/, "Z") as unknown as Date;

export class ContainerRunner {
  readonly #o: ContainerOptions;
  #child?: ChildProcess;
  #state: V1ContainerState = { waiting: { reason: "ContainerCreating" } };
  #lastState: V1ContainerState = {};
  #restartCount = 0;
  #runs = 0;
  #backoffMs = 0;
  #startedAt = 0;
  #ready = false;
  #started = false;
  #probes: { startup?: ProbeState; readiness?: ProbeState; liveness?: ProbeState } = {};
  #probing = false;
  #terminating = false;
  #timer?: NodeJS.Timeout;
  #exited?: Promise<void>;

  constructor(options: ContainerOptions) {
    this.#o = options;
  }

  get name(): string {
    return this.#o.container.name;
  }

  get #terminationLog(): string {
    return join(this.#o.dir, `${this.name}.termination-log`);
  }

  /** What the process wrote to its termination message file, as the kubelet reads it (at most 4 KiB). */
  #terminationMessage(): string | undefined {
    try {
      const text = readFileSync(this.#terminationLog).subarray(0, 4096).toString("utf8");
      return text || undefined;
    } catch {
      return undefined;
    }
  }

  get ready(): boolean {
    return this.#ready;
  }

  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the process (again); a configuration problem leaves it waiting and retries shortly. */
  async start(): Promise<void> {
    if (this.#terminating || this.#child) return;
    let launch: Launch;
    try {
      launch = await this.#o.prepare();
    } catch (error) {
      const reason = error instanceof ContainerConfigError ? error.reason : "CreateContainerError";
      this.#state = { waiting: { reason, message: (error as Error).message } };
      this.#schedule(() => void this.start(), 2000);
      return;
    }
    if (this.#terminating) return;
    if (this.#runs > 0) this.#restartCount += 1;
    this.#runs += 1;
    const log = createWriteStream(join(this.#o.dir, `${this.name}.log`), { flags: "a" });
    // The container's terminationMessagePath, as a file of its own that the process is told about
    // (TURNPIKE_TERMINATION_LOG); emptied at each start, read into the terminated state on exit.
    writeFileSync(this.#terminationLog, "");
    const child = spawn(launch.command, launch.args, {
      cwd: launch.cwd,
      env: { ...launch.env, TURNPIKE_TERMINATION_LOG: this.#terminationLog },
      stdio: ["ignore", "pipe", "pipe"],
      // Its own process group, as in a container: a Ctrl-C to `make run` reaches it only through the agent.
      detached: true,
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.#child = child;
    this.#startedAt = Date.now();
    this.#ready = false;
    this.#started = !this.#o.container.startupProbe;
    const { startupProbe, readinessProbe, livenessProbe } = this.#o.container;
    this.#probes = {
      startup: startupProbe ? new ProbeState(startupProbe, this.#startedAt) : undefined,
      readiness: readinessProbe ? new ProbeState(readinessProbe, this.#startedAt) : undefined,
      liveness: livenessProbe ? new ProbeState(livenessProbe, this.#startedAt) : undefined,
    };
    // No readiness probe: ready as soon as started, as the kubelet has it.
    if (!readinessProbe) this.#ready = this.#started;
    this.#state = { running: { startedAt: iso(this.#startedAt) } };
    if (child.pid) writeFileSync(join(this.#o.dir, `${this.name}.pid`), `${child.pid}\n`);
    this.#exited = new Promise((resolve) =>
      child.once("exit", (code, signal) => resolve(this.#onExit(code, signal))),
    );
    this.#o.say(`started container ${this.name} (pid ${child.pid}, restart ${this.#restartCount})`);
    this.#schedule(() => void this.#probe(), 500);
  }

  #schedule(fn: () => void, ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(fn, ms);
  }

  async #probe(): Promise<void> {
    const child = this.#child;
    if (!child || this.#terminating || this.#probing) return;
    this.#probing = true;
    try {
      const now = Date.now();
      const { startup, readiness, liveness } = this.#probes;
      const check = async (state: ProbeState) =>
        state.record(await runProbe(state.probe, this.#o.container, this.#o.ports), Date.now());
      if (!this.#started && startup?.due(now)) {
        const result = await check(startup);
        if (result === "pass") this.#started = true;
        if (result === "fail") return void (await this.#kill("startup probe failed"));
      }
      if (this.#started && readiness?.due(now)) {
        const result = await check(readiness);
        if (result === "pass") this.#ready = true;
        if (result === "fail") this.#ready = false;
      }
      if (!readiness) this.#ready = this.#started;
      if (this.#started && liveness?.due(now)) {
        if ((await check(liveness)) === "fail") return void (await this.#kill("liveness probe failed"));
      }
    } finally {
      this.#probing = false;
      if (this.#child === child && !this.#terminating) this.#schedule(() => void this.#probe(), 500);
    }
  }

  /** A failed startup or liveness probe: stop the process; its exit restarts it per restartPolicy. */
  async #kill(why: string): Promise<void> {
    this.#o.say(`container ${this.name}: ${why}, restarting`);
    await this.#signal(this.#o.graceSeconds());
  }

  async #signal(graceSeconds: number): Promise<void> {
    const child = this.#child;
    if (!child || !this.#exited) return;
    const exited = this.#exited;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceSeconds * 1000);
    await exited;
    clearTimeout(timer);
  }

  #onExit(code: number | null, signal: NodeJS.Signals | null): void {
    const finishedAt = Date.now();
    const exitCode = code ?? 128 + (signal === "SIGKILL" ? 9 : signal === "SIGTERM" ? 15 : 1);
    this.#child = undefined;
    this.#ready = false;
    const message = this.#terminationMessage();
    this.#lastState = {
      terminated: {
        exitCode,
        ...(signal ? { signal: signal === "SIGKILL" ? 9 : 15 } : {}),
        reason: exitCode === 0 ? "Completed" : "Error",
        ...(message ? { message } : {}),
        startedAt: iso(this.#startedAt),
        finishedAt: iso(finishedAt),
      },
    };
    this.#o.say(`container ${this.name} exited (${signal ?? code})`);
    if (this.#terminating) {
      this.#state = this.#lastState;
      return;
    }
    const policy = this.#o.restartPolicy;
    if (policy === "Never" || (policy === "OnFailure" && exitCode === 0)) {
      this.#state = this.#lastState;
      return;
    }
    if (finishedAt - this.#startedAt > BACKOFF_RESET_MS) this.#backoffMs = 0;
    const delay = this.#backoffMs;
    this.#backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_START_MS, this.#backoffMs * 2));
    this.#state =
      delay === 0
        ? { waiting: { reason: "ContainerCreating" } }
        : {
            waiting: {
              reason: "CrashLoopBackOff",
              message: `back-off ${delay / 1000}s restarting failed container=${this.name}`,
            },
          };
    this.#schedule(() => void this.start(), delay);
  }

  /** SIGTERM, then SIGKILL after `graceSeconds`; no restart afterwards. */
  async stop(graceSeconds: number): Promise<void> {
    this.#terminating = true;
    clearTimeout(this.#timer);
    await this.#signal(graceSeconds);
  }

  status(image: string): V1ContainerStatus {
    return {
      name: this.name,
      image,
      imageID: "",
      containerID: this.#child?.pid ? `turnpike-node://${this.#child.pid}` : undefined,
      ready: this.#ready,
      started: this.#child ? this.#started : false,
      restartCount: this.#restartCount,
      state: this.#state,
      lastState: this.#lastState,
    };
  }
}

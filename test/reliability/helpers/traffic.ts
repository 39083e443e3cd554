/**
 * Client traffic for the fault tests, shaped like careful real clients: every logical request has
 * its own Idempotency-Key and is retried with that same key after a 503, a 409
 * idempotency_key_in_use, a dropped connection or a hang (switching gateway), within bounds. The
 * echo model returns its input, and each input carries the logical request's sequence number, so a
 * record found in PostgreSQL can always be traced back to the logical request that caused it.
 * Every HTTP answer is kept with its timing, for the outage measurements.
 */
import { readSse } from "../../runtime/helpers/gateway-sse.js";
import type { Tenant } from "./installation.js";

/** One HTTP answer (status 0: no answer at all: connection refused/reset, or a hang). */
export interface Answer {
  at: number;
  ms: number;
  status: number;
  code?: string;
  kind: "submit" | "poll";
}

export type Mode = "async" | "sync";

/** One logical request (one Idempotency-Key), however many attempts it took. */
export interface LogicalRequest {
  seq: number;
  tenant: string;
  key: string;
  mode: Mode;
  /** Every request id an answer gave for this key (more than one would be a duplicate). */
  ids: Set<string>;
  outcome?: "accepted" | "refused" | "gave-up";
  /** The error code of a refusal. */
  refusal?: string;
  attempts: number;
  /** Sync clients: the final status they were given, and the echoed sequence number. */
  result?: { status: string; seq?: number };
  /** Also re-sent once after it was accepted (a client retrying a success it did not trust). */
  resent?: boolean;
}

export interface TrafficOptions {
  /** Base URLs of the gateways that currently run (re-read on every attempt). */
  gateways: () => string[];
  /** An answer slower than this counts as a hang and is retried. */
  hangMs?: number;
  /** How long one logical request keeps retrying before it gives up. */
  retryDeadlineMs?: number;
}

export interface StreamOptions {
  tenants: Tenant[];
  /** Parallel clients. */
  concurrency: number;
  /** Stop after this many logical requests. */
  max: number;
  mode?: Mode;
  /** Every n-th accepted request is re-sent once with its key. */
  resendEvery?: number;
  /** Pause of each client between two logical requests (a steady trickle instead of a burst). */
  pauseMs?: number;
}

const RETRY_CODES = new Set([
  "service_unavailable",
  "queue_full",
  "idempotency_key_in_use",
  "model_unavailable",
]);

/** The body of an echo request carrying `seq`. */
export function echoBody(seq: number, mode: Mode): string {
  return JSON.stringify({
    inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [seq, 1, 2, 3] }],
    ...(mode === "sync" ? { parameters: { timeout: 20_000 } } : {}),
  });
}

/** Reads the sequence number out of an echo output (OIP JSON or a record's wire tensor). */
export function seqOfOutputs(outputs: unknown): number | undefined {
  const first = Array.isArray(outputs) ? (outputs[0] as { data?: unknown }) : undefined;
  if (!first) return undefined;
  if (Array.isArray(first.data)) return Number(first.data[0]);
  if (typeof first.data === "string") return Buffer.from(first.data, "base64").readFloatLE(0);
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends and tracks logical requests; see the file comment. */
function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export class Traffic {
  readonly requests: LogicalRequest[] = [];
  readonly answers: Answer[] = [];
  private nextSeq = 1;
  private rr = 0;
  private readonly hangMs: number;
  private readonly retryDeadlineMs: number;

  constructor(
    private readonly label: string,
    private options: TrafficOptions,
  ) {
    this.hangMs = options.hangMs ?? 15_000;
    this.retryDeadlineMs = options.retryDeadlineMs ?? 90_000;
  }

  /** Points later attempts and reconnects at other gateways. */
  retarget(gateways: () => string[]): void {
    this.options = { ...this.options, gateways };
  }

  /** Requests that at least one answer accepted. */
  accepted(): LogicalRequest[] {
    return this.requests.filter((r) => r.outcome === "accepted");
  }

  /** Every request id handed out by an answer. */
  acceptedIds(): Set<string> {
    return new Set(this.requests.flatMap((r) => [...r.ids]));
  }

  /**
   * Starts `concurrency` clients that send new logical requests until `max` were sent or stop()
   * is called; stop() resolves when every started request has its outcome.
   */
  stream(options: StreamOptions): { done: Promise<void>; stop(): Promise<void> } {
    let stopped = false;
    let sent = 0;
    const client = async (index: number) => {
      while (!stopped && sent < options.max) {
        sent++;
        const tenant = options.tenants[(sent + index) % options.tenants.length]!;
        await this.send(tenant, options.mode ?? "async", options.resendEvery);
        if (options.pauseMs) await sleep(options.pauseMs);
      }
    };
    const done = Promise.all(Array.from({ length: options.concurrency }, (_, i) => client(i))).then(
      () => undefined,
    );
    return {
      done,
      async stop() {
        stopped = true;
        await done;
      },
    };
  }

  /** Sends `count` logical requests and waits for all their outcomes. */
  async burst(options: Omit<StreamOptions, "max"> & { count: number }): Promise<void> {
    await this.stream({ ...options, max: options.count }).done;
  }

  /** One logical request, retried with its key until accepted, refused, or the deadline. */
  async send(tenant: Tenant, mode: Mode, resendEvery?: number): Promise<LogicalRequest> {
    const seq = this.nextSeq++;
    const request: LogicalRequest = {
      seq,
      tenant: tenant.name,
      key: `${this.label}-${seq}`,
      mode,
      ids: new Set(),
      attempts: 0,
    };
    this.requests.push(request);
    await this.attempt(request, tenant);
    if (request.outcome === "accepted" && resendEvery && seq % resendEvery === 0) {
      request.resent = true;
      await this.attempt(request, tenant);
    }
    if (mode === "sync" && request.outcome === "accepted" && !request.result) {
      request.result = await this.pollFinal(request, tenant);
    }
    return request;
  }

  private async attempt(request: LogicalRequest, tenant: Tenant): Promise<void> {
    const deadline = Date.now() + this.retryDeadlineMs;
    for (let attempt = 0; Date.now() < deadline; attempt++) {
      request.attempts++;
      const answer = await this.post(request, tenant);
      if (answer.kind === "accepted") {
        request.ids.add(answer.id);
        request.outcome = "accepted";
        if (answer.result) request.result = answer.result;
        return;
      }
      if (answer.kind === "refused") {
        // A refusal after an earlier acceptance (a re-send) keeps the acceptance.
        request.outcome ??= "refused";
        request.refusal = answer.code;
        return;
      }
      await sleep(Math.min(1_000, 100 * (attempt + 1)));
    }
    request.outcome ??= "gave-up";
  }

  private gateway(): string {
    const list = this.options.gateways();
    if (list.length === 0) throw new Error("no gateway is running");
    return list[this.rr++ % list.length]!;
  }

  private async post(
    request: LogicalRequest,
    tenant: Tenant,
  ): Promise<
    | { kind: "accepted"; id: string; result?: { status: string; seq?: number } }
    | { kind: "refused"; code: string }
    | { kind: "retry" }
  > {
    const started = Date.now();
    const record = (status: number, code?: string) =>
      this.answers.push({ at: started, ms: Date.now() - started, status, code, kind: "submit" });
    try {
      const res = await fetch(`${this.gateway()}/v2/models/echo/infer`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tenant.apiKey}`,
          "content-type": "application/json",
          "idempotency-key": request.key,
          ...(request.mode === "async" ? { prefer: "respond-async" } : {}),
        },
        body: echoBody(request.seq, request.mode),
        signal: AbortSignal.timeout(request.mode === "sync" ? 20_000 + this.hangMs : this.hangMs),
      });
      const text = await res.text().catch(() => "");
      const body = parseJson(text);
      // /v2 errors are the OIP shape {error: "message", code}; every error also carries the header.
      const code =
        (typeof body?.code === "string" ? body.code : undefined) ??
        res.headers.get("turnpike-error-code") ??
        undefined;
      record(res.status, code);
      if (res.status === 200) {
        const id = String((body?.parameters as { request_id?: string } | undefined)?.request_id);
        return { kind: "accepted", id, result: { status: "succeeded", seq: seqOfOutputs(body?.outputs) } };
      }
      if (res.status === 202) return { kind: "accepted", id: String(body?.id) };
      // A synchronous wait that ran out: the request goes on under this id.
      if (code === "sync_timeout") return { kind: "accepted", id: String(body?.request_id) };
      if (code && RETRY_CODES.has(code)) return { kind: "retry" };
      return { kind: "refused", code: code ?? `http-${res.status}` };
    } catch (error) {
      record(0, (error as Error).name === "TimeoutError" ? "hang" : "no-answer");
      return { kind: "retry" };
    }
  }

  /** Polls GET /v1/requests/{id} until the request is final (or the retry deadline); its result then. */
  async pollFinal(request: LogicalRequest, tenant: Tenant) {
    const id = [...request.ids][0]!;
    const deadline = Date.now() + this.retryDeadlineMs;
    while (Date.now() < deadline) {
      const started = Date.now();
      try {
        const res = await fetch(`${this.gateway()}/v1/requests/${id}`, {
          headers: { authorization: `Bearer ${tenant.apiKey}` },
          signal: AbortSignal.timeout(this.hangMs),
        });
        const body = (await res.json()) as {
          status?: string;
          result?: { outputs?: unknown };
          error?: { code?: string };
        };
        // A refusal names its code (a 503 while Redis or PostgreSQL restarts is an answer, not a hang).
        const code = body.error?.code ?? res.headers.get("turnpike-error-code") ?? undefined;
        this.answers.push({ at: started, ms: Date.now() - started, status: res.status, code, kind: "poll" });
        if (body.status === "succeeded" || body.status === "failed") {
          return { status: body.status, seq: seqOfOutputs(body.result?.outputs) };
        }
      } catch {
        this.answers.push({ at: started, ms: Date.now() - started, status: 0, kind: "poll" });
      }
      await sleep(250);
    }
    return undefined;
  }

  /**
   * Follows a request's SSE stream like EventSource: on a dropped stream it reconnects (to any
   * running gateway) with Last-Event-ID, until the final `result` event or the deadline.
   */
  async follow(id: string, tenant: Tenant, deadlineMs = 90_000, onEvent?: () => void): Promise<SseOutcome> {
    const outcome: SseOutcome = { id, results: 0, reconnects: -1, statuses: [] };
    let lastEventId: string | undefined;
    const deadline = Date.now() + deadlineMs;
    while (Date.now() < deadline && outcome.results === 0) {
      outcome.reconnects++;
      let stream;
      try {
        const res = await fetch(`${this.gateway()}/v1/requests/${id}/events`, {
          headers: {
            authorization: `Bearer ${tenant.apiKey}`,
            ...(lastEventId ? { "last-event-id": lastEventId } : {}),
          },
          signal: AbortSignal.timeout(Math.max(1, deadline - Date.now())),
        });
        if (res.status === 204) {
          outcome.endedWith204 = true;
          break;
        }
        if (res.status !== 200) {
          await res.body?.cancel();
          await sleep(200);
          continue;
        }
        stream = readSse(res);
        stream.ended.catch(() => undefined); // a dropped stream is handled through waitFor
        if (onEvent) stream.waitFor(() => true).then(onEvent, () => undefined);
        const final = await stream.waitFor((e) => e.event === "result" || e.event === "timeout");
        for (const e of stream.events) if (e.event === "status") outcome.statuses.push(e.id ?? "");
        if (final.event === "result") {
          outcome.results += stream.events.filter((e) => e.event === "result").length;
          outcome.finalStatus = (final.data as { status?: string }).status;
          outcome.seq = seqOfOutputs((final.data as { result?: { outputs?: unknown } }).result?.outputs);
        }
        lastEventId = stream.events.at(-1)?.id ?? lastEventId;
      } catch {
        // The gateway died under the stream (or never answered): reconnect with what we saw.
        if (stream) {
          for (const e of stream.events) if (e.event === "status") outcome.statuses.push(e.id ?? "");
          lastEventId = stream.events.at(-1)?.id ?? lastEventId;
        }
        await sleep(200);
      }
    }
    return outcome;
  }
}

/** What one SSE client saw. */
export interface SseOutcome {
  id: string;
  /** `result` events received over all connections (exactly 1 is right). */
  results: number;
  reconnects: number;
  statuses: string[];
  finalStatus?: string;
  seq?: number;
  endedWith204?: boolean;
}

/** The p-th percentile (0-100) of `values`, 0 when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

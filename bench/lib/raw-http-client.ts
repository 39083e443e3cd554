/**
 * A keep-alive HTTP/1.1 client for one fixed request, as cheap per request as a load generator can
 * be: the request's bytes are built once, each connection sends them with one write, and a response
 * is read only far enough to know its status and where it ends (Content-Length or chunked). Node's
 * http.request costs the paced generator ~0.6 ms of CPU per request, as much as the gateway it
 * loads, on the same two cores; autocannon (the ceiling's generator) works the same way as this.
 *
 *   const client = new RawHttpClient({ url, body, headers, connections });
 *   client.send(onDone) -> onDone(status | undefined) once the answer (or an error) came back
 */
import { connect, type Socket } from "node:net";

/** What to send and how many connections may carry it. */
export interface RawHttpOptions {
  url: string;
  body: unknown;
  headers: Record<string, string>;
  connections: number;
  timeoutMs: number;
}

type Done = (status?: number) => void;

/** One connection: at most one request on it at a time. */
interface Conn {
  socket: Socket;
  done?: Done;
  sentAt: number;
  buffer: Buffer;
}

const HEAD_END = Buffer.from("\r\n\r\n");

/** Where the response that starts `buffer` ends and its status; undefined while incomplete. */
export function responseEnd(buffer: Buffer): { status: number; end: number } | undefined {
  const headEnd = buffer.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const head = buffer.toString("latin1", 0, headEnd);
  const status = Number(head.slice(9, 12));
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  const bodyStart = headEnd + 4;
  if (length) {
    const end = bodyStart + Number(length[1]);
    return buffer.length >= end ? { status, end } : undefined;
  }
  if (!/\r\ntransfer-encoding:\s*chunked/i.test(head)) return { status, end: bodyStart };
  // Chunked: walk the chunk sizes up to the last (zero) chunk and its blank line.
  let at = bodyStart;
  for (;;) {
    const lineEnd = buffer.indexOf("\r\n", at);
    if (lineEnd < 0) return undefined;
    const size = parseInt(buffer.toString("latin1", at, lineEnd), 16);
    if (Number.isNaN(size)) throw new Error("bad chunk size in response");
    if (size === 0) {
      const trailerEnd = buffer.indexOf(HEAD_END, lineEnd);
      return trailerEnd < 0 ? undefined : { status, end: trailerEnd + 4 };
    }
    at = lineEnd + 2 + size + 2;
    if (at > buffer.length) return undefined;
  }
}

/** See the module comment. */
export class RawHttpClient {
  private readonly request: Buffer;
  private readonly idle: Conn[] = [];
  private readonly waiting: Done[] = [];
  private readonly open = new Set<Conn>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly host: string;
  private readonly port: number;
  private closed = false;

  constructor(private readonly options: RawHttpOptions) {
    const url = new URL(options.url);
    this.host = url.hostname;
    this.port = Number(url.port || 80);
    const body = Buffer.from(JSON.stringify(options.body));
    const headers = {
      host: url.host,
      "content-type": "application/json",
      "content-length": String(body.length),
      ...options.headers,
    };
    const head = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join("");
    this.request = Buffer.concat([Buffer.from(`POST ${url.pathname} HTTP/1.1\r\n${head}\r\n`), body]);
    // One timer for every request's timeout, instead of one per request.
    this.sweeper = setInterval(() => this.sweep(), Math.min(1000, options.timeoutMs)).unref();
  }

  /** Sends the request on a free connection (a new one while under the limit), else when one frees up. */
  send(done: Done): void {
    const conn = this.idle.pop() ?? (this.open.size < this.options.connections ? this.connect() : undefined);
    if (conn) this.start(conn, done);
    else this.waiting.push(done);
  }

  /** Closes every connection; requests still waiting or running count as errors. */
  close(): void {
    this.closed = true;
    clearInterval(this.sweeper);
    for (const conn of [...this.open]) this.fail(conn);
    for (const done of this.waiting.splice(0)) done();
  }

  private connect(): Conn {
    const socket = connect({ host: this.host, port: this.port, noDelay: true });
    const conn: Conn = { socket, sentAt: 0, buffer: Buffer.alloc(0) };
    this.open.add(conn);
    socket.on("data", (chunk: Buffer) => this.onData(conn, chunk));
    socket.on("error", () => this.fail(conn));
    socket.on("close", () => this.fail(conn));
    return conn;
  }

  private start(conn: Conn, done: Done): void {
    conn.done = done;
    conn.sentAt = performance.now();
    conn.socket.write(this.request);
  }

  private onData(conn: Conn, chunk: Buffer): void {
    conn.buffer = conn.buffer.length === 0 ? chunk : Buffer.concat([conn.buffer, chunk]);
    let parsed;
    try {
      parsed = responseEnd(conn.buffer);
    } catch {
      return this.fail(conn);
    }
    if (!parsed) return;
    conn.buffer = conn.buffer.subarray(parsed.end);
    const done = conn.done;
    conn.done = undefined;
    const next = this.waiting.shift();
    if (next) this.start(conn, next);
    else this.idle.push(conn);
    done?.(parsed.status);
  }

  /** Drops a connection; the request on it, if any, is an error. */
  private fail(conn: Conn): void {
    if (!this.open.delete(conn)) return;
    const at = this.idle.indexOf(conn);
    if (at >= 0) this.idle.splice(at, 1);
    conn.socket.destroy();
    const done = conn.done;
    conn.done = undefined;
    done?.();
    // A request waiting for a connection gets a new one in place of the dropped one.
    const next = this.closed ? undefined : this.waiting.shift();
    if (next) this.start(this.connect(), next);
  }

  private sweep(): void {
    const now = performance.now();
    for (const conn of this.open) {
      if (conn.done && now - conn.sentAt > this.options.timeoutMs) this.fail(conn);
    }
  }
}

/**
 * A raw HTTP/1.1 client over a TCP socket: unlike fetch or node:http it sends exactly the bytes it
 * is given (header values with control characters, duplicate or oversized headers, lying
 * Content-Length), which is what hostile clients do. One request per connection.
 */
import { connect } from "node:net";

export interface RawRequest {
  method: string;
  path: string;
  /** Header lines as given (name, value); Host and Connection: close are added unless present. */
  headers: [string, string | Buffer][];
  body?: Buffer | string;
  /** Send this Content-Length instead of the body's (undefined: the body's length; null: none). */
  contentLength?: string | null;
  /**
   * Send the head, then wait up to this long for an early answer (a 413 for a Content-Length over
   * the limit) before sending the body; with an answer the body is not sent at all (as with
   * `Expect: 100-continue`), since the server closes without reading it.
   */
  pauseBeforeBodyMs?: number;
}

export interface RawResponse {
  /** 0 when the server closed the connection without an answer. */
  status: number;
  headers: Record<string, string>;
  body: string;
  ms: number;
  /** No answer and no close within the timeout. */
  hung: boolean;
}

/** Sends `request` to 127.0.0.1:`port` and reads the whole answer (bounded by `timeoutMs`). */
export function rawRequest(port: number, request: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const started = Date.now();
  const body = request.body === undefined ? Buffer.alloc(0) : Buffer.from(request.body);
  const lines: Buffer[] = [Buffer.from(`${request.method} ${request.path} HTTP/1.1\r\n`, "latin1")];
  const names = new Set(request.headers.map(([n]) => n.toLowerCase()));
  if (!names.has("host")) lines.push(Buffer.from("host: 127.0.0.1\r\n"));
  if (!names.has("connection")) lines.push(Buffer.from("connection: close\r\n"));
  for (const [name, value] of request.headers) {
    lines.push(Buffer.concat([Buffer.from(`${name}: `, "latin1"), Buffer.from(value), Buffer.from("\r\n")]));
  }
  const length = request.contentLength === undefined ? String(body.length) : request.contentLength;
  if (length !== null && !names.has("content-length"))
    lines.push(Buffer.from(`content-length: ${length}\r\n`));
  lines.push(Buffer.from("\r\n"));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = connect({ host: "127.0.0.1", port });
    let done = false;
    const finish = (hung: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parse(Buffer.concat(chunks)), ms: Date.now() - started, hung });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("end", () => finish(false));
    socket.on("close", () => finish(false));
    socket.on("error", () => finish(false));
    const sendBody = () => {
      if (socket.destroyed) return;
      socket.write(body, () => {
        // Half-close only when the Content-Length may lie: a server waiting for body bytes it was
        // promised then sees EOF instead of waiting for its own timeout.
        if (request.contentLength !== undefined && request.contentLength !== null) socket.end();
      });
    };
    socket.write(Buffer.concat(lines));
    if (request.pauseBeforeBodyMs) {
      const wait = setTimeout(sendBody, request.pauseBeforeBodyMs);
      socket.once("data", () => clearTimeout(wait));
    } else sendBody();
  });
}

function parse(raw: Buffer): Omit<RawResponse, "ms" | "hung"> {
  const cut = raw.indexOf("\r\n\r\n");
  if (cut < 0) return { status: 0, headers: {}, body: "" };
  const head = raw.subarray(0, cut).toString("latin1").split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head[0] ?? "")?.[1] ?? 0);
  const headers: Record<string, string> = {};
  for (const line of head.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = raw.subarray(cut + 4);
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) body = dechunk(body);
  return { status, headers, body: body.toString("utf8") };
}

function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  while (at < data.length) {
    const eol = data.indexOf("\r\n", at);
    if (eol < 0) break;
    const size = parseInt(data.subarray(at, eol).toString("latin1"), 16);
    if (!Number.isFinite(size) || size === 0) break;
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
  return Buffer.concat(parts);
}

// The paced load generator's response framing: where an HTTP/1.1 response ends on a keep-alive
// connection (Content-Length, chunked, or neither), so the next response on it is read from there.
import { describe, expect, it } from "vitest";
import { responseEnd } from "../../bench/lib/raw-http-client.js";

const bytes = (text: string) => Buffer.from(text, "latin1");

describe("responseEnd", () => {
  it("waits for the whole body of a Content-Length response and ends there", () => {
    const head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n";
    expect(responseEnd(bytes(head + '{"a":'))).toBeUndefined();
    const full = bytes(`${head}{"a":12345}HTTP/1.1 200`);
    expect(responseEnd(full)).toEqual({ status: 200, end: head.length + 11 });
  });

  it("walks chunked bodies to the last chunk and its blank line", () => {
    const head = "HTTP/1.1 504 Gateway Timeout\r\ntransfer-encoding: chunked\r\n\r\n";
    const body = "5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n";
    expect(responseEnd(bytes(head + body.slice(0, 12)))).toBeUndefined();
    expect(responseEnd(bytes(head + body))).toEqual({ status: 504, end: head.length + body.length });
  });

  it("ends a response without a body at its head, and waits for an incomplete head", () => {
    const head = "HTTP/1.1 204 No Content\r\nx: y\r\n\r\n";
    expect(responseEnd(bytes(head))).toEqual({ status: 204, end: head.length });
    expect(responseEnd(bytes("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"))).toBeUndefined();
  });
});

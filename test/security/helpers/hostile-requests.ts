/**
 * The generators of the hostile HTTP test (test/security/hostile-http.test.ts): one fast-check
 * arbitrary of raw requests per family, each mutating one aspect of a request that is otherwise
 * valid for the `echo` model (see installation.ts), authenticated with the key `apiKey()` returns.
 */
import fc from "fast-check";
import { DATATYPES } from "../../../runtime/shared/contracts/index.js";
import type { RawRequest } from "./raw-http.js";

/** The arbitraries by family, for a gateway that accepts `apiKey()`. */
export function hostileRequests(apiKey: () => string) {
  /** A request that passes every check: the base every family mutates. */
  function valid(overrides: Partial<RawRequest> = {}): RawRequest {
    return {
      method: "POST",
      path: "/v2/models/echo/infer",
      headers: [
        ["authorization", `Bearer ${apiKey()}`],
        ["content-type", "application/json"],
        ["prefer", "respond-async"],
      ],
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }] }),
      ...overrides,
    };
  }

  const withHeader = (base: RawRequest, name: string, value: string | Buffer): RawRequest => ({
    ...base,
    headers: [...base.headers.filter(([n]) => n.toLowerCase() !== name.toLowerCase()), [name, value]],
  });

  // ---- generators -----------------------------------------------------------------------------

  /** Percent-encodes the UTF-8 bytes of any string (lone surrogates included, unlike encodeURIComponent). */
  const pct = (text: string) =>
    [...Buffer.from(text, "utf8")].map((b) => `%${b.toString(16).padStart(2, "0")}`).join("");

  const anyText = fc.oneof(
    fc.string({ unit: "binary", maxLength: 40 }),
    fc.string({ unit: "grapheme", maxLength: 40 }),
    fc.constantFrom(
      "",
      " ",
      "\u0000",
      "\ud800",
      "\u202e",
      "💥",
      "a".repeat(300),
      "../..",
      "%00",
      "{tenant}",
      "*",
    ),
  );
  const dim = fc.oneof(
    fc.integer({ min: -3, max: 8 }),
    fc.constantFrom(2 ** 31, 2 ** 32, 2 ** 53, 1e308, 0.5, -1, 1e6),
    fc.constant("4" as unknown as number),
  );
  const datatype = fc.oneof(
    fc.constantFrom(...DATATYPES),
    fc.constantFrom("fp32", "FLOAT", "STRING", "INT128", "", "FP32 ", "BYTES\u0000", "__proto__"),
    anyText,
  );
  const tensorData = fc.oneof(
    fc.array(fc.oneof(fc.double(), fc.integer(), fc.boolean(), anyText, fc.constant(null)), {
      maxLength: 64,
    }),
    fc.array(fc.array(fc.double({ noNaN: true }), { maxLength: 8 }), { maxLength: 8 }),
    fc.base64String({ maxLength: 128 }),
    anyText,
    fc.jsonValue({ maxDepth: 3 }),
  );
  const tensor = fc.record(
    {
      name: fc.oneof(fc.constantFrom("x", "image", "text"), anyText),
      datatype,
      shape: fc.oneof(fc.array(dim, { maxLength: 10 }), fc.jsonValue({ maxDepth: 2 })),
      data: tensorData,
      parameters: fc.option(
        fc.record({
          content_type: fc.oneof(fc.constantFrom("base64", "str", "utf8", "raw", "binary"), anyText),
        }),
      ),
    },
    { requiredKeys: [] },
  );
  const model = fc.constantFrom("echo", "ocr");

  const jsonBodies = fc
    .oneof(
      fc.string({ unit: "binary", maxLength: 400 }),
      fc.uint8Array({ maxLength: 600 }).map((b) => Buffer.from(b).toString("latin1")),
      fc.json({ maxDepth: 4 }),
      fc.nat({ max: 60 }).map((n) => valid().body!.toString().slice(0, n)),
      fc.integer({ min: 1, max: 100_000 }).map((depth) => `${"[".repeat(depth)}${"]".repeat(depth)}`),
      fc.integer({ min: 1, max: 20_000 }).map((depth) => `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`),
      fc.constantFrom(
        '{"__proto__":{"inputs":[]}}',
        '{"constructor":{"prototype":{"polluted":1}}}',
        '{"inputs":[{"name":"x","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]}],"__proto__":{}}',
        "null",
        "[]",
        '""',
        "1e999",
        '{"inputs":1e999}',
      ),
    )
    .map((body) => valid({ body }));

  const oipStructure = fc
    .record(
      {
        id: fc.oneof(anyText, fc.jsonValue({ maxDepth: 2 })),
        inputs: fc.oneof(
          fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 4 }),
          fc.anything({ maxDepth: 2 }),
        ),
        parameters: fc.oneof(
          fc.dictionary(anyText, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }),
          fc.record({ timeout: fc.oneof(fc.integer(), fc.double(), anyText, fc.constant(null)) }),
          fc.anything({ maxDepth: 1 }),
        ),
        outputs: fc.oneof(
          fc.array(fc.record({ name: anyText }), { maxLength: 4 }),
          fc.anything({ maxDepth: 1 }),
        ),
        extra: fc.anything({ maxDepth: 1 }),
      },
      { requiredKeys: [] },
    )
    .map((body) => valid({ body: JSON.stringify(body) }));

  const tensors = fc
    .record({ model, inputs: fc.array(tensor, { minLength: 0, maxLength: 4 }), sync: fc.boolean() })
    .map(({ model, inputs, sync }) => {
      const base = valid({ path: `/v2/models/${model}/infer`, body: JSON.stringify({ inputs }) });
      return sync ? { ...base, headers: base.headers.filter(([n]) => n !== "prefer") } : base;
    });

  /** A valid request whose FP32 input x is [rows, 4]: the tensor's `data` (and parameters) given. */
  const rowsOfX = (rows: number, tensor: { data: unknown; parameters?: Record<string, string> }) =>
    valid({
      body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [rows, 4], ...tensor }] }),
    });

  const huge = fc.oneof(
    fc
      .integer({ min: 1, max: 64 })
      .map((mb) => valid({ body: Buffer.alloc(8 * 1024 * 1024 + mb * 1024, "1"), pauseBeforeBodyMs: 5_000 })),
    fc
      .integer({ min: 1_000, max: 60_000 })
      .map((rows) => rowsOfX(rows, { data: Array.from({ length: rows * 4 }, (_, i) => i % 97) })),
    fc.integer({ min: 1_000, max: 200_000 }).map((rows) =>
      rowsOfX(rows, {
        parameters: { content_type: "base64" },
        data: Buffer.alloc(rows * 16, 7).toString("base64"),
      }),
    ),
    fc.constantFrom([2 ** 20, 4], [2 ** 31, 2 ** 31, 4], [2 ** 26, 2 ** 26], [0, 4], [1e15, 4]).map((shape) =>
      valid({
        body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape, data: [1, 2, 3, 4] }] }),
      }),
    ),
    fc.integer({ min: 65, max: 2_000 }).map((n) =>
      valid({
        body: JSON.stringify({
          inputs: Array.from({ length: n }, (_, i) => ({
            name: `x${i}`,
            datatype: "FP32",
            shape: [1, 4],
            data: [1, 2, 3, 4],
          })),
        }),
      }),
    ),
    fc.integer({ min: 257, max: 4_000_000 }).map((n) =>
      valid({
        body: JSON.stringify({
          id: "i".repeat(n),
          inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }],
        }),
      }),
    ),
  );

  const unicode = fc
    .record({
      text: fc.string({ unit: "binary", minLength: 1, maxLength: 60 }),
      where: fc.constantFrom("name", "id", "path", "datatype", "bom", "utf16", "lone-surrogate"),
    })
    .map(({ text, where }) => {
      const inputs = [{ name: "x", datatype: "FP32", shape: [1, 4], data: [1, 2, 3, 4] }];
      switch (where) {
        case "name":
          return valid({ body: JSON.stringify({ inputs: [{ ...inputs[0], name: text }] }) });
        case "id":
          return valid({ body: JSON.stringify({ id: text, inputs }) });
        case "path":
          return valid({ path: `/v2/models/${pct(text)}/infer` });
        case "datatype":
          return valid({ body: JSON.stringify({ inputs: [{ ...inputs[0], datatype: text }] }) });
        case "bom":
          return valid({
            body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(JSON.stringify({ inputs }))]),
          });
        case "utf16":
          return valid({ body: Buffer.from(JSON.stringify({ inputs, id: text }), "utf16le") });
        default:
          return valid({ body: `{"id":"\\ud800${text.length}","inputs":${JSON.stringify(inputs)}}` });
      }
    });

  const contentTypes = fc
    .oneof(
      fc.constantFrom(
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/xml",
        "application/json; charset=utf-16",
        "application/json; charset=latin1",
        "application/JSON",
        "application/json, text/plain",
        "*/*",
        "",
        "application/octet-stream",
        "application/jsonx",
        "application/vnd.api+json",
      ),
      fc.string({ unit: "grapheme-ascii", maxLength: 60 }),
      fc.constant(null),
    )
    .chain((type) =>
      fc
        .oneof(fc.constant(valid().body!.toString()), fc.constant("a=1&b=2"), fc.string({ maxLength: 80 }))
        .map((body) => {
          const base = valid({ body });
          return type === null
            ? { ...base, headers: base.headers.filter(([n]) => n !== "content-type") }
            : withHeader(base, "content-type", type);
        }),
    );

  const idempotencyKeys = fc
    .oneof(
      fc.string({ unit: "binary", maxLength: 300 }).map((k) => Buffer.from(k, "utf8")),
      fc
        .constantFrom("", " ", "a b", "x".repeat(256), "\t", "key\u0000", "ключ", "k,k", "x".repeat(255))
        .map((k) => Buffer.from(k)),
      fc.string({ unit: "grapheme-ascii", minLength: 1, maxLength: 255 }).map((k) => Buffer.from(k)),
    )
    .chain((value) =>
      fc.boolean().map((twice) => {
        const base = withHeader(valid(), "idempotency-key", value);
        return twice
          ? { ...base, headers: [...base.headers, ["idempotency-key", "second"] as [string, string]] }
          : base;
      }),
    );

  const credentials = fc
    .oneof(
      fc.string({ unit: "binary", maxLength: 200 }).map((v) => ["authorization", Buffer.from(v)] as const),
      fc
        .string({ unit: "grapheme-ascii", maxLength: 200 })
        .map((v) => ["authorization", `Bearer ${v}`] as const),
      fc
        .constantFrom(
          "Bearer",
          "Bearer ",
          `Bearer ${"k".repeat(20_000)}`,
          "Basic dXNlcjpwYXNz",
          "bearer  spaced  key",
          "Bearer eyJhbGciOiJub25lIn0.eyJ0ZW5hbnQiOiJmdXp6In0.",
          "Bearer eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnQiOiJmdXp6In0.c2ln",
          "Digest x",
        )
        .map((v) => ["authorization", v] as const),
      fc.string({ unit: "binary", maxLength: 200 }).map((v) => ["x-api-key", Buffer.from(v)] as const),
    )
    .chain(([name, value]) =>
      fc.constantFrom("replace", "add", "both").map((how) => {
        const base = valid();
        const rest = base.headers.filter(([n]) => n !== "authorization");
        if (how === "replace")
          return { ...base, headers: [...rest, [name, value] as [string, string | Buffer]] };
        if (how === "add")
          return { ...base, headers: [...base.headers, [name, value] as [string, string | Buffer]] };
        return {
          ...base,
          headers: [
            ...rest,
            [name, value] as [string, string | Buffer],
            ["x-api-key", "nope"] as [string, string],
          ],
        };
      }),
    );

  const requestId = fc.oneof(
    fc.uuid(),
    fc.oneof(anyText.map(pct), fc.constantFrom("%E0%A4%A", "%zz", "%", "%00")),
    fc.constantFrom("../../etc/passwd", "%2e%2e", "00000000-0000-0000-0000-000000000000"),
  );
  const paths = fc
    .record({
      method: fc.oneof(
        fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "TRACE"),
        fc.stringMatching(/^[A-Z]{1,10}$/),
      ),
      path: fc.oneof(
        fc.constantFrom(
          "/",
          "/v2",
          "/v2/",
          "/v2/models",
          "/v2/models/",
          "/v2//models/echo/infer",
          "/v2/models/echo/infer/",
          "/v2/health/ready",
          "/metrics",
          "/v1/requests/",
        ),
        model.map((m) => `/v2/models/${m}`),
        fc
          .tuple(anyText, fc.constantFrom("", "/ready", "/infer", "/versions/1/infer"))
          .map(([m, s]) => `/v2/models/${pct(m)}${s}`),
        requestId.map((id) => `/v1/requests/${id}`),
        requestId.map((id) => `/v1/requests/${id}/events`),
        fc.webPath().map((p) => p || "/"),
        fc.integer({ min: 1_000, max: 12_000 }).map((n) => `/v2/models/${"m".repeat(n)}/infer`),
      ),
      query: fc.option(fc.webQueryParameters()),
      lastEventId: fc.option(anyText.map((t) => Buffer.from(t))),
    })
    .map(({ method, path, query, lastEventId }) => {
      const base = valid({ method, path: query ? `${path}?${query}` : path });
      const get = method === "GET" || method === "HEAD";
      const request = get ? { ...base, body: undefined, contentLength: null } : base;
      return lastEventId ? withHeader(request, "last-event-id", lastEventId) : request;
    });

  const framing: fc.Arbitrary<RawRequest> = fc.oneof<fc.Arbitrary<RawRequest>[]>(
    fc
      .constantFrom("-1", "abc", "99999999999999999999", "0", "1, 2", " 5")
      .map((length) => valid({ contentLength: length })),
    fc.integer({ min: 1, max: 2_000 }).map((more) => valid({ contentLength: String(200 + more) })),
    fc.constant(valid({ headers: [...valid().headers, ["transfer-encoding", "chunked"]] })),
    fc.constant({
      ...valid(),
      contentLength: null,
      headers: [...valid().headers, ["transfer-encoding", "chunked"]],
      body: "zz\r\nnot hex\r\n0\r\n\r\n",
    }),
    fc
      .constantFrom("\r", "\n", "\u0000", "\u007f", "\r\nx-injected: 1")
      .map((c) => withHeader(valid(), "x-odd", `a${c}b`)),
    fc
      .constantFrom("bad header", "x:", ":x", "x y: z", "\u00ff: v")
      .map((name) => ({ ...valid(), headers: [...valid().headers, [name, "v"] as [string, string]] })),
    fc.integer({ min: 17, max: 80 }).map((kb) => withHeader(valid(), "x-big", "b".repeat(kb * 1024))),
    fc.constantFrom("GET /v2 HTTP/1.1 extra", "/v2/models/echo/infer\u0000").map((path) => valid({ path })),
  );

  return {
    jsonBodies,
    oipStructure,
    tensors,
    huge,
    unicode,
    contentTypes,
    idempotencyKeys,
    credentials,
    paths,
    framing,
  };
}

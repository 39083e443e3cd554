// Pure parts of the tenant API: the opaque cursor round-trips and refuses forgeries, the list SQL
// carries only the filters asked for (the keyset condition as an index-friendly row comparison),
// the daily range is validated, and what a cancelled request charges.
import { describe, expect, it } from "vitest";
import { chargedTokens } from "../../runtime/shared/db/index.js";
import { ApiError } from "../../runtime/gateway/errors.js";
import {
  decodeCursor,
  encodeCursor,
  parseDailyQuery,
  parseListQuery,
} from "../../runtime/gateway/tenant/tenant-query.js";
import { listRequestsSql } from "../../runtime/gateway/tenant/tenant-sql.js";

const position = { submittedAt: "2026-12-04T07:33:58.123456Z", id: "3f0c1b9e-7a8d-4c2b-9e1f-0a1b2c3d4e5f" };

describe("the request list's cursor and query", () => {
  it("round-trips a position through an opaque URL-safe cursor", () => {
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[\w-]+$/);
    expect(decodeCursor(cursor)).toEqual(position);
  });

  it.each(["", "%%%", Buffer.from("[1,2]").toString("base64url"), encodeCursor({ ...position, id: "nope" })])(
    "refuses the cursor %j with invalid_cursor",
    (cursor) => {
      expect(() => decodeCursor(cursor)).toThrow(
        expect.objectContaining({ code: "invalid_cursor" }) as ApiError,
      );
    },
  );

  it("builds one statement per filter set, tenant first, keyset as a row comparison", () => {
    const plain = listRequestsSql("s", parseListQuery("acme", {}));
    expect(plain.values).toEqual(["acme", 21]);
    expect(plain.text).toMatch(/WHERE tenant = \$1\nORDER BY submitted_at DESC, id DESC\nLIMIT \$2/);
    const q = parseListQuery("acme", {
      status: "failed",
      model: "ocr",
      since: "2026-12-01",
      limit: "5",
      cursor: encodeCursor(position),
    });
    const full = listRequestsSql("s", q);
    expect(full.text).toContain("(submitted_at, id) < ($5::timestamptz, $6::uuid)");
    expect(full.values).toEqual([
      "acme",
      "failed",
      "ocr",
      "2026-12-01T00:00:00.000Z",
      position.submittedAt,
      position.id,
      6,
    ]);
    expect(() => parseListQuery("acme", { limit: ["1", "2"] })).toThrow(/give it once/);
  });
});

describe("the daily usage range", () => {
  const now = Date.parse("2026-12-04T08:00:00Z");
  it("defaults to this month up to today and lists every day", () => {
    const r = parseDailyQuery({}, now);
    expect(r).toMatchObject({ from: "2026-12-01", to: "2026-12-04" });
    expect(r.days).toEqual(["2026-12-01", "2026-12-02", "2026-12-03", "2026-12-04"]);
    expect(parseDailyQuery({ from: "2024-02-28", to: "2024-03-01" }, now).days).toEqual([
      "2024-02-28",
      "2024-02-29",
      "2024-03-01",
    ]);
    expect(parseDailyQuery({ from: "2025-01-01", to: "2026-01-01" }, now).days).toHaveLength(366);
  });
});

describe("chargedTokens of a cancelled request", () => {
  const base = { inputTokens: 12, outputTokens: 30 };
  it("charges what ran; a failed request charges nothing", () => {
    expect(chargedTokens({ ...base, status: "cancelled" })).toBe(42);
    expect(chargedTokens({ inputTokens: 0, outputTokens: 0, status: "cancelled" })).toBe(0);
    expect(chargedTokens({ ...base, status: "failed" })).toBe(0);
  });
});

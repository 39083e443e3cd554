/**
 * Pieces every fault test shares: reading a process's in-flight gauge, measuring the answers of an
 * outage window, OCR requests with exact expected text, and turning an audit into a report row.
 */
import { expect } from "vitest";
import { decodeTensor, toJsonData } from "../../../runtime/shared/tensors.js";
import { renderLinePng } from "../../fixtures/text-line.js";
import type { AuditResult } from "./audit.js";
import type { Installation, Tenant } from "./installation.js";
import type { FaultRow } from "./report-file.js";
import { percentile, type Answer } from "./traffic.js";

/** The `turnpike_in_flight_requests` gauge of a role's /metrics (summed over targets). */
export async function inFlightOf(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
  let sum = 0;
  for (const m of text.matchAll(/^turnpike_in_flight_requests\{[^}]*\} (\d+(?:\.\d+)?)$/gm))
    sum += Number(m[1]);
  return sum;
}

/** Answers of submissions that started inside [from, to]: count, 503s, p99 and max time, hangs. */
export function outageStats(
  answers: readonly Answer[],
  from: number,
  to: number,
): NonNullable<FaultRow["outage"]> {
  const inside = answers.filter((a) => a.at >= from && a.at <= to);
  const times = inside.map((a) => a.ms);
  return {
    answers: inside.length,
    unavailable: inside.filter((a) => a.status === 503).length,
    p99Ms: percentile(times, 99),
    maxMs: times.length ? Math.max(...times) : 0,
    hangs: inside.filter((a) => a.code === "hang").length,
  };
}

/** Checks that every answer inside the window was prompt, and a 2xx or a clear JSON 503/429. */
export function expectPromptAnswers(
  answers: readonly Answer[],
  from: number,
  to: number,
  p99Ms = 3_000,
): void {
  const inside = answers.filter((a) => a.at >= from && a.at <= to);
  const unclear = inside.filter(
    (a) =>
      a.status !== 0 &&
      a.status !== 200 &&
      a.status !== 202 &&
      !(a.status === 504 && a.code === "sync_timeout") && // a sync wait ran out: the id to poll
      !(a.status === 503 && a.code) &&
      !(a.status === 429 && a.code) &&
      !(a.status === 409 && a.code === "idempotency_key_in_use"),
  );
  expect(unclear.map((a) => `${a.status} ${a.code}`)).toEqual([]);
  expect(inside.filter((a) => a.code === "hang")).toEqual([]);
  expect(
    percentile(
      inside.map((a) => a.ms),
      99,
    ),
  ).toBeLessThan(p99Ms);
}

/** A report row from an audit and the measured times. */
export function faultRow(
  fault: string,
  result: AuditResult,
  times: { inFlightAtFault: number; backInServiceMs: number; recoveryMs: number },
  extra: Partial<FaultRow> = {},
): FaultRow {
  return {
    kind: "fault",
    fault,
    requests: result.requests,
    accepted: result.accepted,
    inFlightAtFault: times.inFlightAtFault,
    lost: result.lost,
    duplicated: result.duplicated,
    phantoms: result.phantoms,
    gaveUp: result.gaveUp,
    tokensWrong: result.tokensWrong,
    leftReserved: result.leftReserved,
    quotaExceeded: result.quotaExceeded,
    backInServiceMs: times.backInServiceMs,
    recoveryMs: times.recoveryMs,
    notes: "",
    ...extra,
  };
}

/** Asserts the invariants of an audit (the report row is written before, so failures are recorded too). */
export function expectClean(result: AuditResult): void {
  expect(result.problems).toEqual([]);
  expect({
    lost: result.lost,
    duplicated: result.duplicated,
    phantoms: result.phantoms,
    unexplained: result.unexplained,
    gaveUp: result.gaveUp,
    tokensWrong: result.tokensWrong,
    leftReserved: result.leftReserved,
    quotaExceeded: result.quotaExceeded,
  }).toEqual({
    gaveUp: 0,
    lost: 0,
    duplicated: 0,
    phantoms: 0,
    unexplained: 0,
    tokensWrong: 0,
    leftReserved: 0,
    quotaExceeded: 0,
  });
}

/** Text lines for OCR requests whose recognition is exact with PP-OCRv4 and DejaVu Sans. */
export const ocrLine = (i: number) => `Invoice ${10_000 + i * 7}`;

/** Submits OCR request `i` asynchronously (keyed, retried on 503); returns its request id. */
export async function submitOcr(
  gateway: () => string,
  tenant: Tenant,
  i: number,
  png?: Buffer,
): Promise<string> {
  const body = JSON.stringify({
    inputs: [
      {
        name: "image",
        datatype: "BYTES",
        shape: [1],
        parameters: { content_type: "base64" },
        data: [(png ?? renderLinePng(ocrLine(i))).toString("base64")],
      },
    ],
  });
  for (let attempt = 0; attempt < 60; attempt++) {
    try {
      const res = await fetch(`${gateway()}/v2/models/ocr/infer`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${tenant.apiKey}`,
          "content-type": "application/json",
          prefer: "respond-async",
          "idempotency-key": `ocr-${i}`,
        },
        body,
        signal: AbortSignal.timeout(15_000),
      });
      const answer = (await res.json()) as { id?: string; error?: string; code?: string };
      if (res.status === 202 && answer.id) return answer.id;
      if (res.status !== 503 && answer.code !== "idempotency_key_in_use") {
        throw new Error(`OCR request ${i} refused: ${res.status} ${JSON.stringify(answer)}`);
      }
    } catch (error) {
      if ((error as Error).message.startsWith("OCR request")) throw error;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`OCR request ${i} never accepted`);
}

/** The recognised text of OCR records by request id. */
export async function ocrTexts(inst: Installation): Promise<Map<string, string>> {
  const answer = await inst.pool.query<{ id: string; outputs: { name: string }[] | null }>(
    `SELECT id::text AS id, outputs FROM "${inst.schema}".requests WHERE target = 'ocr'`,
  );
  const texts = new Map<string, string>();
  for (const row of answer.rows) {
    const text = row.outputs?.find((o) => o.name === "text");
    texts.set(row.id, text ? String(toJsonData(decodeTensor(text as never))[0]) : "<no text>");
  }
  return texts;
}

/** Polls `check` until it returns true (bounded). */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Number of final records in the installation's schema. */
export async function recordCount(inst: Installation, target?: string): Promise<number> {
  const answer = await inst.pool.query<{ n: string }>(
    `SELECT count(*)::text AS n FROM "${inst.schema}".requests${target ? " WHERE target = $1" : ""}`,
    target ? [target] : [],
  );
  return Number(answer.rows[0]?.n ?? 0);
}

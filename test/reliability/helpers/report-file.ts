/**
 * The suite's own output: each test file writes its measured rows as JSON under
 * `.turnpike/reliability/` (git-ignored), and `npx tsx test/reliability/report.ts` renders them
 * into docs/reliability.md, so the table there is always one real run's numbers.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoRoot } from "../../harness/kube.js";

export const RESULTS_DIR = process.env.TURNPIKE_RELIABILITY_DIR ?? join(repoRoot, ".turnpike/reliability");

/** One fault, injected while requests were in flight. */
export interface FaultRow {
  kind: "fault";
  fault: string;
  /** Logical requests sent (async + sync + probes), accepted, and in flight when the fault hit. */
  requests: number;
  accepted: number;
  inFlightAtFault: number;
  lost: number;
  duplicated: number;
  /** Phantoms: refused requests that ran anyway. */
  phantoms: number;
  /** Logical requests never accepted although their client kept retrying until its deadline. */
  gaveUp?: number;
  tokensWrong: number;
  leftReserved: number;
  quotaExceeded: number;
  /** Fault -> the system completes new work again. */
  backInServiceMs: number;
  /** Fault -> every accepted request recorded and settled. */
  recoveryMs: number;
  /** Answers during the outage: how many, how many 503, p99 answer time, hangs. */
  outage?: { answers: number; unavailable: number; p99Ms: number; maxMs: number; hangs: number };
  /** Which processes reconnected by themselves and which needed a restart. */
  reconnect?: string;
  notes: string;
}

/** One family of hostile input. */
export interface HostileRow {
  kind: "hostile";
  family: string;
  cases: number;
  serverErrors: number;
  crashes: number;
  undocumented: number;
  notes: string;
}

/** One security property. */
export interface SecurityRow {
  kind: "security";
  check: string;
  cases: number;
  violations: number;
  notes: string;
}

export type ReportRow = FaultRow | HostileRow | SecurityRow;

/** Writes (replaces) the rows of one test file. */
export function writeRows(file: string, rows: ReportRow[]): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(
    join(RESULTS_DIR, `${file}.json`),
    `${JSON.stringify({ file, writtenAt: new Date().toISOString(), rows }, null, 2)}\n`,
  );
}

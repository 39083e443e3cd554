/**
 * One fault test file's frame: the report rows it writes when it ends and the installation it
 * cleans up, whichever test created it.
 */
import { afterAll } from "vitest";
import { installation, type Installation, type InstallationOptions } from "./installation.js";
import { writeRows, type FaultRow } from "./report-file.js";

export interface FaultSuite {
  /** Rows for docs/reliability.md, written to `<report>` after the file's tests. */
  rows: FaultRow[];
  /** Creates the installation the suite cleans up at the end. */
  install(options: InstallationOptions): Promise<Installation>;
  /** The installation, once a test created it. */
  readonly current: Installation | undefined;
}

/** Registers the file's afterAll (write rows, clean up) and returns the frame. */
export function faultSuite(report: string): FaultSuite {
  const rows: FaultRow[] = [];
  let inst: Installation | undefined;
  afterAll(async () => {
    writeRows(report, rows);
    await inst?.cleanup();
  }, 60_000);
  return {
    rows,
    async install(options) {
      inst = await installation(options);
      return inst;
    },
    get current() {
      return inst;
    },
  };
}

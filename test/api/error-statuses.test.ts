/**
 * The HTTP status documented for each error code is the one the gateway answers: the table under
 * "HTTP errors" in docs/api.md against runtime/gateway/errors.ts, every code in both. Statuses
 * written next to a code elsewhere in the docs (`503 queue_full` or 503 `queue_full`) are held to the
 * same mapping.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ERROR_STATUS } from "../../runtime/gateway/errors.js";
import { repoRoot } from "../harness/kube.js";

const read = (path: string) => readFileSync(join(repoRoot, path), "utf8");

/** Rows of the first table after `heading`, as {code: status}. */
function documentedStatuses(markdown: string, heading: string): Record<string, number> {
  const section = markdown.split(`\n${heading}\n`)[1];
  if (section === undefined) throw new Error(`docs/api.md has no "${heading}" section`);
  const rows = section
    .split("\n\n")
    .find((block) => block.trimStart().startsWith("|"))!
    .split("\n")
    .slice(2) // header and separator
    .filter((row) => row.startsWith("|"));
  return Object.fromEntries(
    rows.map((row) => {
      const [code, status] = row
        .split("|")
        .slice(1, 3)
        .map((cell) => cell.trim());
      return [code!.replace(/`/g, ""), Number(status)];
    }),
  );
}

describe("documented HTTP statuses of error codes", () => {
  it("docs/api.md lists every code with the status the gateway answers", () => {
    expect(documentedStatuses(read("docs/api.md"), "## HTTP errors")).toEqual(ERROR_STATUS);
  });

  it.each(["README.md", "docs/api.md", "docs/reliability.md"])("%s pairs codes with their status", (file) => {
    const pairs = [...read(file).matchAll(/`?\b(\d{3}) `?([a-z_]+)`/g)]
      .map((m) => [m[2], Number(m[1])] as [string, number])
      .filter(([code]) => code in ERROR_STATUS);
    const answered = pairs.map(([code]) => [code, ERROR_STATUS[code as keyof typeof ERROR_STATUS]]);
    expect(pairs).toEqual(answered);
  });
});

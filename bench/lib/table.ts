/** A plain-text table (also valid Markdown), as the suite prints it and bench/README.md shows it. */

export type Cell = string | number | undefined;

/** Renders a table; the first `leftColumns` columns are left-aligned, the others right-aligned. */
export function renderTable(header: string[], rows: Cell[][], leftColumns = 2): string {
  const text = rows.map((row) => row.map((c) => (c === undefined ? "" : String(c))));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i < leftColumns ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i < leftColumns ? "-".repeat(w + 2) : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...text.map(line)].join("\n");
}

/** A number with thousands separators and at most `digits` decimals. */
export function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || Number.isNaN(n)) return "-";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}

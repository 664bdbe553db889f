import type { LineOutput } from './output.js';

/** A plain-text table for humans; scripts use --json. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = columnWidths(headers, rows);
  return [headers, widths.map((w) => '-'.repeat(w)), ...rows].map((r) => tableLine(r, widths)).join('\n');
}

/**
 * The same table, written as the rows come: the column widths are taken from
 * the first `sample` rows, and a longer cell later only pushes the rest of its
 * own row. A 100,000-key ledger is never held in memory. Returns the row count.
 */
export async function writeTable(out: LineOutput, headers: readonly string[], rows: AsyncIterable<readonly string[]>, sample = 500): Promise<number> {
  const head: (readonly string[])[] = [];
  let widths: number[] | undefined;
  let count = 0;
  const start = async () => {
    widths = columnWidths(headers, head);
    await out.line(tableLine(headers, widths));
    await out.line(
      tableLine(
        widths.map((w) => '-'.repeat(w)),
        widths,
      ),
    );
    for (const r of head) await out.line(tableLine(r, widths));
  };
  for await (const row of rows) {
    count++;
    if (widths) await out.line(tableLine(row, widths));
    else {
      head.push(row);
      if (head.length === sample) await start();
    }
  }
  if (!widths && count > 0) await start();
  return count;
}

function columnWidths(headers: readonly string[], rows: readonly (readonly string[])[]): number[] {
  return headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
}

function tableLine(cells: readonly string[], widths: readonly number[]): string {
  return cells
    .map((c, i) => (c ?? '').padEnd(widths[i]!))
    .join('  ')
    .trimEnd();
}

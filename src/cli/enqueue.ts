import type { EnqueueResult, Producer } from '../queue/producer.js';
import { formatFieldErrors } from '../domain/request.js';

/** One printed result per input line. */
export interface LineResult {
  readonly line: number;
  readonly slotId?: string;
  readonly postId?: string;
  readonly status: EnqueueResult['status'];
  readonly reason?: string;
  readonly tweetId?: string;
}

const BATCH = 500;

function describe(line: number, r: EnqueueResult): LineResult {
  const key = r.key ?? {};
  const base = { line, ...(key.slotId !== undefined && { slotId: key.slotId }), ...(key.postId !== undefined && { postId: key.postId }) };
  switch (r.status) {
    case 'queued':
      return { ...base, status: 'queued' };
    case 'duplicate':
      return { ...base, status: 'duplicate', reason: `already ${r.state}` };
    case 'sent':
      return { ...base, status: 'sent', tweetId: r.tweetId };
    case 'failed':
      return { ...base, status: 'failed', reason: r.detail ? `${r.reason}: ${r.detail}` : r.reason };
    case 'cancelled':
      return { ...base, status: 'cancelled', reason: 'was cancelled; it stays cancelled' };
    case 'conflict':
      return { ...base, status: 'conflict', reason: r.error.message };
    case 'invalid':
      return { ...base, status: 'invalid', reason: formatFieldErrors(r.errors) };
  }
}

/**
 * Enqueue JSON lines in batches, yielding one result per line in input
 * order as each batch is stored, so a caller can print as it goes. A line
 * that is not JSON is reported as invalid with its number; the other lines
 * still go in.
 */
export async function* enqueueLines(lines: AsyncIterable<string> | Iterable<string>, producer: Pick<Producer, 'enqueueMany'>): AsyncGenerator<LineResult> {
  let chunk: string[] = [];
  let start = 0;
  const flush = async function* (): AsyncGenerator<LineResult> {
    const parsed: { line: number; value: unknown }[] = [];
    const early = new Map<number, LineResult>();
    chunk.forEach((text, i) => {
      const line = start + i + 1;
      if (text.trim() === '') {
        early.set(line, { line, status: 'invalid', reason: '(line): is empty' });
        return;
      }
      try {
        parsed.push({ line, value: JSON.parse(text) });
      } catch (err) {
        early.set(line, { line, status: 'invalid', reason: `(line): is not valid JSON (${(err as Error).message})` });
      }
    });
    const results = await producer.enqueueMany(parsed.map((p) => p.value));
    const byLine = new Map(parsed.map((p, i) => [p.line, describe(p.line, results[i]!)]));
    for (let i = 0; i < chunk.length; i++) yield early.get(start + i + 1) ?? byLine.get(start + i + 1)!;
    start += chunk.length;
    chunk = [];
  };
  for await (const text of lines) {
    chunk.push(text);
    if (chunk.length === BATCH) yield* flush();
  }
  if (chunk.length > 0) yield* flush();
}

export function formatLineResult(r: LineResult): string {
  const key = r.slotId !== undefined ? ` ${r.slotId}/${r.postId ?? '?'}` : '';
  const extra = r.tweetId ? ` tweet ${r.tweetId}` : r.reason ? ` — ${r.reason}` : '';
  return `line ${r.line}: ${r.status}${key}${extra}`;
}

/** A line that makes `enqueue` exit 2 (the other lines still go in). */
export function isRefused(r: LineResult): boolean {
  return r.status === 'invalid' || r.status === 'conflict';
}

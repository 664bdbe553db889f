import { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { isRefusal } from '../domain/lifecycle.js';
import { formatFieldErrors } from '../domain/request.js';
import type { Lifecycle, LifecycleResult } from '../queue/lifecycle.js';
import { inputLines, UsageError, withApp } from './common.js';
import { stdout } from './output.js';

/**
 * `xactly cancel | edit | reschedule`: one result per input, in order, as
 * JSON lines with --json. Exit 0 when every line was done or was a no-op,
 * 2 when any was refused or invalid (the other lines still apply).
 */
export const LIFECYCLE_HELP: Record<string, string> = {
  cancel:
    'xactly cancel <slotId> <postId> [--reason TEXT] [--json]\n' +
    'xactly cancel --file FILE|- [--json]          JSON lines of {slotId, postId, reason?}\n' +
    'xactly cancel --account ID [--from ISO] [--to ISO] [--reason TEXT] [--json]\n' +
    '  A queued key is cancelled: it never goes out. A key with an attempt in flight becomes cancelling:\n' +
    '  no new attempt starts, and it ends sent (it had gone out) or cancelled.\n' +
    '  --account cancels every key of the account not yet final (scheduled in [--from, --to) when given).',
  edit:
    'xactly edit FILE|- [--json]\n  JSON lines of {slotId, postId, text?, inReplyToTweetId?, recipientId?}: replaces the payload of queued keys,\n' +
    '  validated as at enqueue. Refused while an attempt is in flight (in-flight), or once sent or final.',
  reschedule:
    'xactly reschedule FILE|- [--json]\n  JSON lines of {slotId, postId, scheduledAt, deadline?}: moves queued keys (a time in the past means now;\n' +
    '  without a deadline the key keeps its window). Refused while in flight, or once sent or final.',
};

/** How many lines are applied at once (each is a couple of round trips). */
const CONCURRENCY = 32;

interface Line {
  readonly line: number;
  readonly result: LifecycleResult;
}

function printable({ line, result: r }: Line): Record<string, unknown> {
  const out: Record<string, unknown> = { line, ...(r.key && { slotId: r.key.slotId, postId: r.key.postId }), status: r.status };
  switch (r.status) {
    case 'cancelling':
    case 'in-flight':
      return { ...out, ...('state' in r && { state: r.state }), attempt: r.attempt, since: r.since };
    case 'already-sent':
      return { ...out, state: 'sent', tweetId: r.tweetId };
    case 'final':
      return { ...out, state: r.state, ...(r.reason && { reason: r.reason }) };
    case 'rescheduled':
      return { ...out, scheduledAt: r.scheduledAt, deadline: r.deadline };
    case 'invalid':
      return { ...out, reason: formatFieldErrors(r.errors) };
    default:
      return out;
  }
}

function textOf(p: Record<string, unknown>): string {
  const key = p.slotId !== undefined ? ` ${String(p.slotId)}/${String(p.postId)}` : '';
  const { line: _l, slotId: _s, postId: _p, status, ...rest } = p;
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
  return `line ${String(p.line)}: ${String(status)}${key}${extra ? ` — ${extra}` : ''}`;
}

/** Apply each input line, a few at a time, printing results in input order. */
async function applyLines(
  lines: AsyncIterable<string> | Iterable<string>,
  apply: (raw: unknown) => Promise<LifecycleResult>,
  op: 'cancel' | 'edit' | 'reschedule',
  json: boolean,
): Promise<number> {
  let code = 0;
  let n = 0;
  let batch: Promise<Line>[] = [];
  const flush = async () => {
    for (const l of await Promise.all(batch)) {
      if (isRefusal(l.result.status, op)) code = 2;
      const p = printable(l);
      await stdout.line(json ? JSON.stringify(p) : textOf(p));
    }
    batch = [];
  };
  for await (const text of lines) {
    const line = ++n;
    if (text.trim() === '') {
      batch.push(Promise.resolve({ line, result: { status: 'invalid', errors: [{ field: '(line)', reason: 'is empty' }] } }));
    } else {
      let raw: unknown;
      try {
        raw = JSON.parse(text);
      } catch (err) {
        batch.push(
          Promise.resolve({ line, result: { status: 'invalid', errors: [{ field: '(line)', reason: `is not valid JSON (${(err as Error).message})` }] } }),
        );
        continue;
      }
      batch.push(apply(raw).then((result) => ({ line, result })));
    }
    if (batch.length >= CONCURRENCY) await flush();
  }
  await flush();
  return code;
}

const withLifecycle = <T>(config: Config, run: (l: Lifecycle) => Promise<T>) => withApp(config, async (app) => run(app.producer().lifecycle));

export async function cmdCancel(config: Config, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      file: { type: 'string' },
      account: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
    },
  });
  const json = values.json ?? false;
  if (values.account !== undefined) {
    if (positionals.length || values.file !== undefined) throw new UsageError('cancel --account takes no key and no --file');
    for (const [name, v] of [
      ['from', values.from],
      ['to', values.to],
    ] as const) {
      if (v !== undefined && Number.isNaN(Date.parse(v))) throw new UsageError(`--${name} must be an ISO-8601 date-time (got "${v}")`);
    }
    return withLifecycle(config, async (l) => {
      const r = await l.cancelAccount(values.account!, {
        ...(values.from && { from: values.from }),
        ...(values.to && { to: values.to }),
        ...(values.reason && { reason: values.reason }),
        by: 'cli',
      });
      await stdout.line(
        json
          ? JSON.stringify(r)
          : `account ${r.accountId}: cancelled ${r.cancelled}, cancelling ${r.cancelling} (in flight: they end sent or cancelled), already final ${r.final}`,
      );
      return 0;
    });
  }
  if (values.file !== undefined) {
    if (positionals.length) throw new UsageError('cancel --file takes no key');
    const lines = await inputLines(values.file);
    return withLifecycle(config, (l) => applyLines(lines, (raw) => l.cancelRaw(raw, 'cli'), 'cancel', json));
  }
  if (positionals.length !== 2) throw new UsageError('cancel needs <slotId> <postId>, --file FILE or --account ID');
  const one = JSON.stringify({ slotId: positionals[0], postId: positionals[1], ...(values.reason && { reason: values.reason }) });
  return withLifecycle(config, (l) => applyLines([one], (raw) => l.cancelRaw(raw, 'cli'), 'cancel', json));
}

async function fileCommand(config: Config, args: string[], op: 'edit' | 'reschedule'): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length > 1) throw new UsageError(`${op} takes at most one FILE`);
  const lines = await inputLines(positionals[0]);
  return withLifecycle(config, (l) => applyLines(lines, (raw) => (op === 'edit' ? l.editRaw(raw) : l.rescheduleRaw(raw)), op, values.json ?? false));
}

export const cmdEdit = (config: Config, args: string[]) => fileCommand(config, args, 'edit');
export const cmdReschedule = (config: Config, args: string[]) => fileCommand(config, args, 'reschedule');

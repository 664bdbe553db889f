/**
 * The calendar stream of a chaos run: while faults and kills go on, a share
 * of the keys is cancelled, edited or rescheduled around its due time, so
 * the operation races the claims of the workers. Each answer becomes what
 * the ground-truth check expects of the key:
 *
 * - `cancelled`: ends cancelled, nothing on X;
 * - `cancelling`: ends sent (once) or cancelled;
 * - `edited`: its new text, never the old one, is on X;
 * - `rescheduled`: not on X before its new time;
 * - any refusal (in flight, already sent): the key as it was, and the text
 *   it would have had never on X (a stray).
 */
import type { LifecycleResult, Lifecycle } from '../../src/queue/lifecycle.js';
import { sleep } from '../../test/support/wait.js';
import type { KeySpec } from './schedule.js';

export type CalendarOp = 'cancel' | 'edit' | 'reschedule';

export interface CalendarTally {
  readonly ops: Record<CalendarOp, number>;
  /** How the ledger answered, by status. */
  readonly answers: Record<string, number>;
  /** Attempts that threw (Redis away) and were made again. */
  readonly retried: number;
}

/** The keys the stream changes, each with its operation (chosen once, from the run's seed). */
export function pickCalendar(keys: readonly KeySpec[], share: number, rng: () => number): Map<string, CalendarOp> {
  const ops: CalendarOp[] = ['cancel', 'edit', 'reschedule'];
  const picked = new Map<string, CalendarOp>();
  for (const k of keys) if (!k.refusedByX && rng() < share) picked.set(k.keyId, ops[Math.floor(rng() * ops.length)]!);
  return picked;
}

/** A key as the ground truth must see it after `answer`. */
export function expectedAfter(k: KeySpec, r: LifecycleResult, change: { text?: string; parts?: readonly { text: string }[] }): KeySpec {
  switch (r.status) {
    case 'cancelled':
      return { ...k, mustEndIn: ['cancelled'] };
    case 'cancelling':
      return { ...k, mustEndIn: ['sent', 'cancelled'] };
    case 'edited':
      if (k.parts) return { ...k, text: change.parts![0]!.text, parts: change.parts!, formerTexts: [...(k.formerTexts ?? []), ...k.parts.map((p) => p.text)] };
      return { ...k, text: change.text!, formerTexts: [...(k.formerTexts ?? []), k.text] };
    case 'rescheduled': {
      const scheduledAt = Date.parse(r.scheduledAt);
      return { ...k, scheduledAt, deadline: Date.parse(r.deadline), notBefore: scheduledAt };
    }
    default:
      // Refused: the key carries on as it was (cancel of a final key, edit in flight, ...).
      return k;
  }
}

/**
 * Run the stream until every picked key was changed or `stopped()`. `update`
 * replaces a key's expectation as soon as its answer is in, before anything
 * else enqueues it again.
 */
export async function runCalendar(o: {
  keys: () => readonly KeySpec[];
  picked: ReadonlyMap<string, CalendarOp>;
  lifecycle: Lifecycle;
  rng: () => number;
  update: (k: KeySpec) => void;
  stopped: () => boolean;
  deadlineMs: number;
}): Promise<CalendarTally> {
  const tally = { ops: { cancel: 0, edit: 0, reschedule: 0 }, answers: {} as Record<string, number>, retried: 0 };
  const todo = o
    .keys()
    .filter((k) => o.picked.has(k.keyId))
    .sort((a, b) => a.scheduledAt - b.scheduledAt);
  await Promise.all(
    todo.map(async (k0) => {
      // Around its due time: a little before (queued), at (claimed) or after (in flight, ambiguous, sent).
      const at = k0.scheduledAt + Math.floor((o.rng() - 0.5) * 3_000);
      await sleep(Math.max(0, at - Date.now()));
      const op = o.picked.get(k0.keyId)!;
      const key = { slotId: k0.slotId, postId: k0.postId };
      const text = `${k0.text} (edited)`;
      // A thread is edited whole: every part gets the mark.
      const parts = k0.parts?.map((p) => ({ text: `${p.text} (edited)` }));
      const moveTo = Date.now() + 1_000 + Math.floor(o.rng() * 3_000);
      for (;;) {
        if (o.stopped()) return;
        try {
          const r =
            op === 'cancel'
              ? await o.lifecycle.cancel(key, { reason: 'chaos calendar', by: 'chaos' })
              : op === 'edit'
                ? await o.lifecycle.edit(key, parts ? { parts } : { text })
                : await o.lifecycle.reschedule(key, { scheduledAt: new Date(moveTo).toISOString(), deadline: new Date(moveTo + o.deadlineMs).toISOString() });
          tally.ops[op]++;
          tally.answers[`${op} ${r.status}`] = (tally.answers[`${op} ${r.status}`] ?? 0) + 1;
          o.update(
            expectedAfter(
              o.keys().find((k) => k.keyId === k0.keyId)!,
              r,
              { text, ...(parts && { parts }) },
            ),
          );
          return;
        } catch {
          // Redis away (an event of the run): the operation is idempotent, ask again.
          tally.retried++;
          await sleep(500);
        }
      }
    }),
  );
  return tally;
}

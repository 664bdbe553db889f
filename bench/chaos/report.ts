/**
 * What a chaos run prints: the table a person reads, and the one
 * `CHAOS-SUMMARY {json}` line that test/chaos.test.ts parses.
 */
import { renderTable } from '../../src/cli/table.js';
import { ALL_FAULT_KINDS, ALL_LOOKUP_FAULT_KINDS } from '../../src/fake-x/index.js';
import { percentile } from '../../test/support/stats.js';
import type { ChaosReport } from './run.js';

const secs = (ms: number) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : '-');

export function renderReport(r: ChaosReport): string {
  const o = r.options;
  const v = r.verdict;
  const faultTotal = Object.entries(r.faults)
    .filter(([k]) => !k.startsWith('lookup-'))
    .reduce((a, [, b]) => a + b, 0);
  const rows: string[][] = [
    [
      'keys',
      `${o.keys} over ${o.accounts} accounts (${Object.entries(r.kinds)
        .map(([k, n]) => `${n} ${k}`)
        .join(', ')})`,
    ],
    ['enqueue answers', `${r.enqueue.queued} queued, ${r.enqueue.duplicate} duplicate, ${r.enqueue.sent} sent, ${r.enqueue.failed} failed`],
    ['  racing producers', `${r.enqueue.racing} keys sent by both producers at once`],
    [
      '  after job removal',
      `${r.enqueue.afterRemoval} re-enqueues (${r.enqueue.afterRemovalSent} of keys already sent); ${r.enqueue.jobsRemoved} jobs removed`,
    ],
    ['  final replay', `${r.enqueue.finalReplays} re-enqueues after convergence; writes to X after: ${r.lateWrites}`],
    [
      'calendar stream',
      Object.entries(r.calendar.answers)
        .map(([k, n]) => `${k} ${n}`)
        .join(', ') || '-',
    ],
    ['X write calls', String(r.writes)],
    ...ALL_FAULT_KINDS.map((k) => [`  fault ${k}`, String(r.faults[k] ?? 0)]),
    ...ALL_LOOKUP_FAULT_KINDS.map((k) => [`  lookup fault ${k}`, String(r.faults[`lookup-${k}`] ?? 0)]),
    ['  faults total', `${faultTotal} (${r.writes ? ((100 * faultTotal) / r.writes).toFixed(1) : '0'} % of writes)`],
    ['workers', `${o.workers} (concurrency ${o.concurrency} each)`],
    [
      'kills',
      `SIGKILL ${r.kills.sigkill} (${r.kills.duringPass} while the reconciliation lock was held), SIGTERM ${r.kills.sigterm} (${
        Object.entries(r.kills.graceful)
          .map(([k, n]) => `${n} ${k}`)
          .join(', ') || '-'
      }), crashes ${r.kills.crashes.length}`,
    ],
    [
      'longest reconcile lock',
      `${r.longestLockHoldS.toFixed(1)} s${r.longestLockHoldS > 30 ? ' (ORPHANED: a worker died mid-pass; reconciliation waits for the lock TTL)' : ''}`,
    ],
    ...r.events.map((e) => [`event at ${e.atS.toFixed(1)} s`, `${e.name} (${e.tookS.toFixed(1)} s)${e.error ? ` FAILED: ${e.error}` : ''}`]),
    ['duplicates', String(v.duplicates)],
    ['lost', String(v.lost)],
    ['stuck (not final)', String(v.stuck)],
    ['sent', String(v.sent)],
    ['cancelled', String(v.cancelled)],
    [
      'failed',
      `${v.failed}${
        v.failed
          ? ` (${Object.entries(v.failedByReason)
              .map(([k, n]) => `${k} ${n}`)
              .join(', ')})`
          : ''
      }`,
    ],
    ['time to converge', r.timedOut ? `TIMEOUT (${o.timeoutS} s)` : `${r.convergeS.toFixed(1)} s after the first enqueue`],
    [
      'scheduled -> live',
      `p50 ${secs(percentile(v.liveAfterMs, 50))}, p99 ${secs(percentile(v.liveAfterMs, 99))}, max ${secs(v.liveAfterMs.at(-1) ?? Number.NaN)}`,
    ],
    [
      'reconciliation',
      Object.entries(r.stats)
        .filter(([k]) => k.startsWith('resolved:'))
        .map(([k, n]) => `${k.slice(9)} ${n}`)
        .join(', ') || '-',
    ],
    [
      'attempt outcomes',
      Object.entries(r.stats)
        .filter(([k]) => k.startsWith('attempts:'))
        .map(([k, n]) => `${k.slice(9)} ${n}`)
        .join(', ') || '-',
    ],
    ['violations', String(r.violations.length)],
  ];
  const head = `xactly chaos — lag <= ${o.lagMaxMs} ms, settle ${o.settleMs} ms, X timeout ${o.xTimeoutMs} ms, fault rate ${o.faultRate}, kill every ${o.killEveryS} s, seed ${o.seed}, X duplicate check ${o.xDuplicateCheck ? 'on' : 'off'}, real X ${(o.realX ?? true) ? 'on' : 'off'}`;
  const lines = [head, '', renderTable(['', ''], rows).split('\n').slice(2).join('\n')];
  if (r.violations.length > 0) {
    lines.push('', 'VIOLATIONS:');
    for (const x of r.violations.slice(0, 50)) lines.push(`  ${x.kind.padEnd(22)} ${x.keyId}  ${x.detail}`);
    if (r.violations.length > 50) lines.push(`  ... and ${r.violations.length - 50} more`);
  }
  if (r.tempDir) lines.push('', `worker logs: ${r.tempDir}/logs`);
  return lines.join('\n');
}

/** One machine-readable line; `test/chaos.test.ts` parses it. */
export function summaryLine(r: ChaosReport): string {
  const v = r.verdict;
  return (
    'CHAOS-SUMMARY ' +
    JSON.stringify({
      ok: r.ok,
      keys: r.options.keys,
      workers: r.options.workers,
      duplicates: v.duplicates,
      lost: v.lost,
      stuck: v.stuck,
      sent: v.sent,
      failed: v.failed,
      cancelled: v.cancelled,
      threads: v.threads,
      threadsSent: v.threadsSent,
      calendar: r.calendar.answers,
      failedByReason: v.failedByReason,
      violations: r.violations.length,
      timedOut: r.timedOut,
      convergeS: Number.isFinite(r.convergeS) ? Number(r.convergeS.toFixed(1)) : null,
      p50LiveS: Number((percentile(v.liveAfterMs, 50) / 1000).toFixed(2)),
      p99LiveS: Number((percentile(v.liveAfterMs, 99) / 1000).toFixed(2)),
      faults: Object.entries(r.faults)
        .filter(([k]) => !k.startsWith('lookup-'))
        .reduce((a, [, b]) => a + b, 0),
      lookupFaults: Object.entries(r.faults)
        .filter(([k]) => k.startsWith('lookup-'))
        .reduce((a, [, b]) => a + b, 0),
      writes: r.writes,
      sigkill: r.kills.sigkill,
      sigterm: r.kills.sigterm,
      killsDuringPass: r.kills.duringPass,
      crashes: r.kills.crashes.length,
      lateWrites: r.lateWrites,
      longestLockHoldS: Number(r.longestLockHoldS.toFixed(1)),
    })
  );
}

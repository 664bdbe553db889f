/**
 * Fault plan of the fake X server: which write request gets which failure.
 *
 * Scripted faults (injectNext) come first so a test can aim at one exact
 * request; random faults come from a seeded PRNG so a chaos run that found a
 * bug can be replayed with the same seed.
 */

export type FaultKind =
  | 'hang-before-commit'
  | 'commit-then-hang'
  | 'commit-then-reset'
  | 'reset-before-commit'
  | '5xx-with-commit'
  | '5xx-without-commit'
  | 'truncated-201'
  | '429';

export const ALL_FAULT_KINDS: readonly FaultKind[] = [
  'hang-before-commit',
  'commit-then-hang',
  'commit-then-reset',
  'reset-before-commit',
  '5xx-with-commit',
  '5xx-without-commit',
  'truncated-201',
  '429',
];

/**
 * Faults of the read endpoints (timeline, DM events): the answer is a 200
 * whose gzip body is cut mid-stream, or it never comes.
 */
export type LookupFaultKind = 'cut-body' | 'hang';
export const ALL_LOOKUP_FAULT_KINDS: readonly LookupFaultKind[] = ['cut-body', 'hang'];

/** Whether the fault lets the write take effect before the response goes wrong. */
export function faultCommits(kind: FaultKind): boolean {
  return kind === 'commit-then-hang' || kind === 'commit-then-reset' || kind === '5xx-with-commit' || kind === 'truncated-201';
}

/** mulberry32: tiny, fast and good enough for picking faults; returns [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface FaultMatch {
  path?: RegExp;
  text?: string;
}

export interface WriteRequestInfo {
  path: string;
  text: string | undefined;
}

interface Scripted<K> {
  kind: K;
  match: FaultMatch | undefined;
}

export interface FaultPlanOptions<K extends string = FaultKind> {
  seed?: number;
  rate?: number;
  kinds?: readonly K[];
  /** Every kind this plan knows (default: the write faults). */
  all?: readonly K[];
}

export class FaultPlan<K extends string = FaultKind> {
  private readonly random: () => number;
  private readonly all: readonly K[];
  private readonly kinds: readonly K[];
  private readonly scripted: Scripted<K>[] = [];
  private rate: number;

  constructor(opts: FaultPlanOptions<K> = {}) {
    this.random = mulberry32(opts.seed ?? 1);
    this.all = opts.all ?? (ALL_FAULT_KINDS as readonly string[] as readonly K[]);
    this.kinds = opts.kinds && opts.kinds.length > 0 ? [...opts.kinds] : this.all;
    this.rate = checkRate(opts.rate ?? 0);
  }

  setRate(rate: number): void {
    this.rate = checkRate(rate);
  }

  injectNext(kind: K, match?: FaultMatch): void {
    if (!this.all.includes(kind)) throw new Error(`unknown fault kind: ${String(kind)}`);
    this.scripted.push({ kind, match });
  }

  pendingScripted(): number {
    return this.scripted.length;
  }

  /** Only a scripted fault, no random draw (for requests random faults must not hit). */
  nextScripted(req: WriteRequestInfo): K | undefined {
    const i = this.scripted.findIndex((s) => matches(s.match, req));
    return i >= 0 ? this.scripted.splice(i, 1)[0]?.kind : undefined;
  }

  /** Decide the fault for one write request that passed auth and validation. */
  next(req: WriteRequestInfo): K | undefined {
    // Draw for every eligible write, even when a scripted fault wins, so the
    // random sequence depends only on how many writes were made, not on how
    // the test mixed scripted and random faults.
    const roll = this.random();
    const pick = this.random();
    const i = this.scripted.findIndex((s) => matches(s.match, req));
    if (i >= 0) {
      const [s] = this.scripted.splice(i, 1);
      return s?.kind;
    }
    if (roll < this.rate) return this.kinds[Math.floor(pick * this.kinds.length)];
    return undefined;
  }
}

function matches(m: FaultMatch | undefined, req: WriteRequestInfo): boolean {
  if (!m) return true;
  if (m.path) {
    m.path.lastIndex = 0; // a /g or /y regexp is stateful; make every test start fresh
    if (!m.path.test(req.path)) return false;
  }
  if (m.text !== undefined && m.text !== req.text) return false;
  return true;
}

function checkRate(rate: number): number {
  if (!Number.isFinite(rate) || rate < 0 || rate > 1) throw new Error(`faultRate must be within 0..1, got ${rate}`);
  return rate;
}

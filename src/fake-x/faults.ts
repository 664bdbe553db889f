/**
 * Fault plans of the fake X server: which write (or read) request gets
 * which failure. Only the decision lives here; `routes.ts` acts it out on
 * the wire.
 *
 * Scripted faults (injectNext) come first so a test can aim at one exact
 * request; random faults come from a seeded PRNG so a chaos run that found a
 * bug can be replayed with the same seed.
 */

export type FaultKind =
  'hang-before-commit' | 'commit-then-hang' | 'commit-then-reset' | 'reset-before-commit' | '5xx-with-commit' | '5xx-without-commit' | 'truncated-201' | '429';

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

/**
 * Faults of the media upload, each at its step: a reset of a simple upload,
 * a hang or a reset during an append, a 5xx on finalize, processing that
 * fails, ids that expire between upload and create (struck at the create
 * that names them), a status answer whose gzip body is cut.
 */
export type MediaFaultKind =
  'upload-reset' | 'append-hang' | 'append-reset' | 'finalize-5xx' | 'processing-failed' | 'expire-before-create' | 'status-cut-body';
export type MediaStep = 'upload' | 'append' | 'finalize' | 'status' | 'create';
export const MEDIA_FAULT_STEP: Readonly<Record<MediaFaultKind, MediaStep>> = Object.freeze({
  'upload-reset': 'upload',
  'append-hang': 'append',
  'append-reset': 'append',
  'finalize-5xx': 'finalize',
  'processing-failed': 'finalize',
  'expire-before-create': 'create',
  'status-cut-body': 'status',
});
export const ALL_MEDIA_FAULT_KINDS = Object.keys(MEDIA_FAULT_STEP) as MediaFaultKind[];

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

export interface FaultScheduleOptions {
  seed?: number;
  /** Share of writes that fail (0..1). */
  rate?: number;
  kinds?: readonly FaultKind[];
  /** Share of timeline and DM-event reads that fail (0..1). */
  lookupRate?: number;
  lookupKinds?: readonly LookupFaultKind[];
  /** Share of media requests that fail at their step (0..1). */
  mediaRate?: number;
  mediaKinds?: readonly MediaFaultKind[];
}

/** Seed offset of the lookup plan, so reads and writes draw independent sequences from one seed. */
const LOOKUP_SEED_OFFSET = 7919;
const MEDIA_SEED_OFFSET = 104_729;

/** One server's two plans, for writes and for lookups, and a count of what they injected. */
export class FaultSchedule {
  private readonly writes: FaultPlan<FaultKind>;
  private readonly lookups: FaultPlan<LookupFaultKind>;
  private readonly counts: Record<string, number> = {};
  private readonly mediaScripted: MediaFaultKind[] = [];
  private readonly mediaRandom: () => number;
  private readonly mediaKinds: readonly MediaFaultKind[];
  private mediaRate: number;

  constructor(opts: FaultScheduleOptions) {
    const seed = opts.seed ?? 1;
    this.mediaRandom = mulberry32(seed + MEDIA_SEED_OFFSET);
    this.mediaKinds = opts.mediaKinds?.length ? [...opts.mediaKinds] : ALL_MEDIA_FAULT_KINDS;
    this.mediaRate = checkRate(opts.mediaRate ?? 0);
    this.writes = new FaultPlan({ seed, rate: opts.rate ?? 0, kinds: opts.kinds ?? [] });
    this.lookups = new FaultPlan<LookupFaultKind>({
      seed: seed + LOOKUP_SEED_OFFSET,
      rate: opts.lookupRate ?? 0,
      kinds: opts.lookupKinds ?? [],
      all: ALL_LOOKUP_FAULT_KINDS,
    });
  }

  injectNext(kind: FaultKind, match?: FaultMatch): void {
    this.writes.injectNext(kind, match);
  }

  injectNextLookup(kind: LookupFaultKind, match?: FaultMatch): void {
    this.lookups.injectNext(kind, match);
  }

  setRate(rate: number): void {
    this.writes.setRate(rate);
  }

  setMediaRate(rate: number): void {
    this.mediaRate = checkRate(rate);
  }

  /** The next media request at this fault's step fails this way. */
  injectNextMedia(kind: MediaFaultKind): void {
    if (!(kind in MEDIA_FAULT_STEP)) throw new Error(`unknown media fault kind: ${String(kind)}`);
    this.mediaScripted.push(kind);
  }

  /**
   * The fault for one media request at `step` (a create only when it names
   * media): a scripted one for the step first, else a seeded draw among the
   * configured kinds of the step (two draws per request, whatever wins).
   */
  nextMedia(step: MediaStep): MediaFaultKind | undefined {
    const roll = this.mediaRandom();
    const pick = this.mediaRandom();
    const i = this.mediaScripted.findIndex((k) => MEDIA_FAULT_STEP[k] === step);
    if (i >= 0) return this.counted(this.mediaScripted.splice(i, 1)[0], 'media-');
    const kinds = this.mediaKinds.filter((k) => MEDIA_FAULT_STEP[k] === step);
    if (kinds.length === 0 || roll >= this.mediaRate) return undefined;
    return this.counted(kinds[Math.floor(pick * kinds.length)], 'media-');
  }

  /** The fault for one write that passed auth, validation and the caps (one random draw each). */
  nextWrite(req: WriteRequestInfo): FaultKind | undefined {
    return this.counted(this.writes.next(req), '');
  }

  /** The fault for one read answer; `scriptedOnly`: no random draw, only an injected fault. */
  nextLookup(req: WriteRequestInfo, scriptedOnly: boolean): LookupFaultKind | undefined {
    return this.counted(scriptedOnly ? this.lookups.nextScripted(req) : this.lookups.next(req), 'lookup-');
  }

  /** How many of each kind were injected (lookup faults as `lookup-<kind>`). */
  injected(): Record<string, number> {
    return { ...this.counts };
  }

  private counted<K extends string>(kind: K | undefined, prefix: string): K | undefined {
    if (kind) this.counts[prefix + kind] = (this.counts[prefix + kind] ?? 0) + 1;
    return kind;
  }
}

import type { BatchScript } from './scripts.js';

/**
 * Group commit for the ledger's hot scripts. The claims (or the settles)
 * that a process's jobs make in the same turn of the event loop go out as
 * one call of the script's batch form (scripts.ts `batchOf`), and each
 * caller gets its own reply. A lone call goes out as the plain script.
 *
 * Why: a script call costs about as much for being a call (a socket write
 * and read on each side, the command's parsing) as for its work
 * (docs/performance.md). When many jobs finish at once, as at the top of
 * the hour, their calls come back in one socket read, and the next claims
 * are all made before the event loop turns: they share one call.
 *
 * Nothing waits for a batch to fill: the calls made so far go out at the
 * end of the current turn (`process.nextTick`), or at once when `max` are
 * pending. Each call's decision is its own script's, made atomically, in
 * the order the calls were made; a call whose script fails gets that error
 * alone.
 */
export type Send = (name: string, args: readonly (string | number)[]) => Promise<unknown>;

interface Pending {
  readonly args: readonly (string | number)[];
  readonly resolve: (reply: unknown) => void;
  readonly reject: (err: unknown) => void;
}

export interface BatchStats {
  /** Calls made to Redis: plain (one caller) and batched. */
  readonly plain: number;
  readonly batches: number;
  /** Callers served by batched calls. */
  readonly batched: number;
}

export class Batcher {
  private pending: Pending[] = [];
  private stats = { plain: 0, batches: 0, batched: 0 };

  constructor(
    private readonly script: BatchScript,
    private readonly send: Send,
    /** Most calls in one batch (a batch holds Redis for that many scripts' time). */
    private readonly max: number,
  ) {}

  /** The script's reply to these arguments (KEYS then ARGV, as `script.of.args` builds them). */
  call(args: readonly (string | number)[]): Promise<unknown> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) process.nextTick(() => this.flush());
      this.pending.push({ args, resolve, reject });
      if (this.pending.length >= this.max) this.flush();
    });
  }

  get counts(): BatchStats {
    return { ...this.stats };
  }

  private flush(): void {
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    const { of, name } = this.script;
    if (batch.length === 1) {
      this.stats.plain++;
      this.send(of.name, batch[0]!.args).then(batch[0]!.resolve, batch[0]!.reject);
      return;
    }
    this.stats.batches++;
    this.stats.batched += batch.length;
    const keys: (string | number)[] = [];
    const argv: (string | number)[] = [];
    for (const { args } of batch) {
      keys.push(...args.slice(0, of.keyCount));
      argv.push(args.length - of.keyCount, ...args.slice(of.keyCount));
    }
    this.send(name, [keys.length, ...keys, ...argv]).then(
      (replies) => {
        const list = replies as unknown[];
        batch.forEach((p, i) => {
          const reply = list[i];
          if (reply instanceof Error) p.reject(reply);
          else if (reply === undefined) p.reject(new Error(`${name}: no reply for call ${i + 1} of ${batch.length}`));
          else p.resolve(reply);
        });
      },
      (err: unknown) => batch.forEach((p) => p.reject(err)),
    );
  }
}

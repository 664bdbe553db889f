/**
 * Two ways of counting what a benchmark phase asks of Redis.
 *
 * 1. Server side: `INFO commandstats` snapshots and their difference. Redis
 *    counts every executed command, including the ones a Lua script runs
 *    through redis.call() (each under its own `cmdstat_<name>`), and it counts
 *    every client of the server, not just ours. Context, not the figure.
 *
 * 2. Client side: a counter hooked into ioredis' `Redis.prototype.sendCommand`
 *    (BullMQ drives the same ioredis class, including the blocking connection
 *    it duplicates). Every command our process writes is counted once; the
 *    commands of one pipeline / MULTI share a single write and count as one
 *    round trip. EVALSHA/EVAL are named after the script they run (BullMQ's
 *    `moveToFinished`, the ledger's `xactlyClaim`, ...), so the ledger's own
 *    share of the traffic can be told apart on a connection it shares with
 *    the worker.
 */
import { Redis } from 'ioredis';

// ---------------------------------------------------------------- server side

export interface CommandStat {
  readonly calls: number;
  readonly usec: number;
  readonly failed: number;
  readonly rejected: number;
}

export type CommandStats = ReadonlyMap<string, CommandStat>;

/** Parse `INFO commandstats`: `cmdstat_<name>:calls=N,usec=N,...` lines. */
export function parseCommandStats(info: string): Map<string, CommandStat> {
  const out = new Map<string, CommandStat>();
  for (const line of info.split(/\r?\n/)) {
    const m = /^cmdstat_([^:]+):(.*)$/.exec(line.trim());
    if (!m) continue;
    const fields: Record<string, number> = {};
    for (const part of m[2]!.split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields[part.slice(0, eq)] = Number(part.slice(eq + 1));
    }
    out.set(m[1]!.toLowerCase(), {
      calls: fields.calls ?? 0,
      usec: fields.usec ?? 0,
      failed: fields.failed_calls ?? 0,
      rejected: fields.rejected_calls ?? 0,
    });
  }
  return out;
}

export async function commandStats(redis: Redis): Promise<CommandStats> {
  return parseCommandStats(await redis.info('commandstats'));
}

/** after − before, per command; commands with no new calls are left out. */
export function diffCommandStats(before: CommandStats, after: CommandStats): Map<string, CommandStat> {
  const out = new Map<string, CommandStat>();
  for (const [name, a] of after) {
    const b = before.get(name) ?? { calls: 0, usec: 0, failed: 0, rejected: 0 };
    const calls = a.calls - b.calls;
    if (calls <= 0) continue;
    out.set(name, { calls, usec: a.usec - b.usec, failed: a.failed - b.failed, rejected: a.rejected - b.rejected });
  }
  return out;
}

export function totalCalls(stats: ReadonlyMap<string, { calls: number }>, filter: (name: string) => boolean = () => true): number {
  let n = 0;
  for (const [name, s] of stats) if (filter(name)) n += s.calls;
  return n;
}

/**
 * Does this server count commands run inside Lua scripts under their own
 * names? Runs one script with three ECHOs and looks at `cmdstat_echo`.
 * (ECHO is rare enough that other clients are unlikely to blur it.)
 */
export async function scriptCallsAreCounted(redis: Redis): Promise<boolean> {
  const before = await commandStats(redis);
  await redis.eval("redis.call('ECHO', 'a'); redis.call('ECHO', 'b'); return redis.call('ECHO', 'c')", 0);
  const after = await commandStats(redis);
  return (diffCommandStats(before, after).get('echo')?.calls ?? 0) >= 3;
}

export async function serverInfo(redis: Redis): Promise<{ version: string; connectedClients: number }> {
  const server = await redis.info('server');
  const clients = await redis.info('clients');
  return {
    version: /redis_version:([^\r\n]+)/.exec(server)?.[1] ?? 'unknown',
    connectedClients: Number(/connected_clients:(\d+)/.exec(clients)?.[1] ?? NaN),
  };
}

/** CPU seconds the Redis server has used so far (user + sys, all threads). */
export async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
  return field('used_cpu_user') + field('used_cpu_sys');
}

// ---------------------------------------------------------------- client side

export interface ClientCounts {
  /** Commands written to Redis (a pipeline of k commands counts k). */
  commands: number;
  /** Writes that wait for a reply: single commands + pipelines (each once). */
  roundTrips: number;
  /** Commands that went out inside a pipeline or MULTI. */
  pipelinedCommands: number;
  /** Per command; scripts as `evalsha:<script name>`. */
  readonly byCommand: Map<string, number>;
}

interface SentCommand {
  name: string;
  args: unknown[];
}

type SendCommand = (this: Redis, command: SentCommand, stream?: unknown, node?: unknown) => unknown;

export interface CommandCounter {
  /** Start counting into a fresh tally (dropping any unfinished one). */
  begin(): void;
  /** Stop counting; returns the tally of the phase. */
  end(): ClientCounts;
  /** Never count commands sent by this client (the stats connection). */
  ignore(redis: Redis): void;
}

let installed: CommandCounter | undefined;

const COUNTED = Symbol('xactly-bench-counted');
const IGNORED = Symbol('xactly-bench-ignored');

interface Tally {
  commands: number;
  roundTrips: number;
  pipelinedCommands: number;
  /** Plain commands by name, scripts by `evalsha <sha>` (named in end()). */
  raw: Map<string, number>;
  /** sha -> script name, from the clients that sent them. */
  scripts: Map<string, string>;
  epoch: number;
}

/**
 * Hook ioredis once for the whole process. Outside begin()..end() the hook
 * costs one comparison per command; inside, a few property writes and a Map
 * update (names are resolved at end()), so that counting does not slow down
 * the side that sends more commands.
 */
export function installCommandCounter(): CommandCounter {
  if (installed) return installed;
  const proto = Redis.prototype as unknown as { sendCommand: SendCommand };
  const original = proto.sendCommand;
  let epoch = 0;
  let current: Tally | undefined;

  const learnScripts = (redis: Redis, t: Tally) => {
    const scripts = (redis as unknown as { scriptsSet?: Record<string, { sha: string }> }).scriptsSet ?? {};
    // BullMQ names its scripts `<name>:<bullmq version>`.
    for (const [name, script] of Object.entries(scripts)) if (!t.scripts.has(script.sha)) t.scripts.set(script.sha, name.replace(/:[\d.]+$/, ''));
  };

  proto.sendCommand = function (this: Redis, command: SentCommand, stream?: unknown, node?: unknown) {
    const t = current;
    if (t !== undefined) {
      const cmd = command as SentCommand & { [COUNTED]?: number };
      // A command can pass through here twice (offline queue flush, resend
      // after a reconnect): count it once.
      if (cmd[COUNTED] !== t.epoch && (this as unknown as { [IGNORED]?: boolean })[IGNORED] !== true) {
        cmd[COUNTED] = t.epoch;
        let key = command.name;
        if (key === 'evalsha' || key === 'eval') {
          const sha = String(command.args[0]);
          key = `${key} ${sha}`;
          if (!t.scripts.has(sha)) learnScripts(this, t);
        }
        t.raw.set(key, (t.raw.get(key) ?? 0) + 1);
        t.commands++;
        const s = stream as { isPipeline?: boolean; [COUNTED]?: number } | undefined;
        if (s !== undefined && s !== null && s.isPipeline === true) {
          t.pipelinedCommands++;
          if (s[COUNTED] !== t.epoch) {
            s[COUNTED] = t.epoch;
            t.roundTrips++;
          }
        } else {
          t.roundTrips++;
        }
      }
    }
    return original.call(this, command, stream, node);
  };

  const finish = (t: Tally | undefined): ClientCounts => {
    const byCommand = new Map<string, number>();
    if (!t) return { commands: 0, roundTrips: 0, pipelinedCommands: 0, byCommand };
    for (const [key, n] of t.raw) {
      const m = /^(evalsha|eval) (.*)$/i.exec(key);
      const label = m ? `${m[1]!.toLowerCase()}:${t.scripts.get(m[2]!) ?? `sha ${m[2]!.slice(0, 8)}`}` : key.toLowerCase();
      byCommand.set(label, (byCommand.get(label) ?? 0) + n);
    }
    return { commands: t.commands, roundTrips: t.roundTrips, pipelinedCommands: t.pipelinedCommands, byCommand };
  };

  installed = {
    begin() {
      current = { commands: 0, roundTrips: 0, pipelinedCommands: 0, raw: new Map(), scripts: new Map(), epoch: ++epoch };
    },
    end() {
      const t = current;
      current = undefined;
      return finish(t);
    },
    ignore(redis) {
      (redis as unknown as { [IGNORED]?: boolean })[IGNORED] = true;
    },
  };
  return installed;
}

/** Is this client-side label a script call (EVALSHA / EVAL)? */
export const isScriptLabel = (label: string) => label.startsWith('evalsha:') || label.startsWith('eval:');
/** Is this client-side label one of the ledger's scripts? */
export const isLedgerLabel = (label: string) => isScriptLabel(label) && /:xactly/.test(label);

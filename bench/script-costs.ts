/**
 * Where Redis' time goes, per script and command (#16's profile).
 *
 *   npm run build && node dist/bench/script-costs.js [--jobs N=5000] [-- extra overhead-bench flags]
 *
 * Starts a redis-server of its own (nothing else talks to it), logs every
 * command in SLOWLOG (`slowlog-log-slower-than 0`), runs the overhead bench
 * (bare BullMQ, then xactly) against it as a child process, then sums the
 * log by script — the ledger's and the webhooks' scripts by their SHA, the
 * others as "other script <sha>" (BullMQ's) — and by command. A script's
 * time includes the commands it ran; those are listed on their own too, so
 * the shares are of all scripts' time and the commands' add up past it. SLOWLOG adds its own cost to every
 * command: read the shares, not the absolute times.
 *
 * Prints figures; asserts nothing.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { LEDGER_SCRIPTS, WEBHOOK_SCRIPTS } from '../src/ledger/scripts.js';
import { newRedis, redisCli, startRedisServer } from '../test/support/redis.js';
import { f0, intOption, run, textTable } from './common.js';

const { values: args, positionals } = parseArgs({
  options: { jobs: { type: 'string', default: '5000' }, help: { type: 'boolean' } },
  allowPositionals: true,
});

interface Cost {
  calls: number;
  usec: number;
}

run(async () => {
  if (args.help) {
    console.log('node dist/bench/script-costs.js [--jobs N] [-- extra overhead-bench flags]');
    return 0;
  }
  const jobs = intOption('jobs', args.jobs!, 1);
  const names = new Map([...LEDGER_SCRIPTS, ...WEBHOOK_SCRIPTS].map((s) => [createHash('sha1').update(s.lua).digest('hex'), s.name]));
  const server = await startRedisServer({ extraArgs: ['--slowlog-log-slower-than', '0', '--slowlog-max-len', '10000000'] });
  try {
    const bench = join(dirname(fileURLToPath(import.meta.url)), 'overhead.js');
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(process.execPath, [bench, '--jobs', String(jobs), '--rounds', '1', '--no-client-count', ...positionals], {
        env: { ...process.env, REDIS_URL: server.url },
        stdio: ['ignore', 'ignore', 'inherit'],
      });
      child.on('error', reject);
      child.on('exit', (c) => resolve(c ?? 1));
    });
    if (code !== 0) {
      console.error(`the overhead bench exited ${code}: its figures measured broken work`);
      return 1;
    }
    const redis = newRedis(server.url);
    const log = (await redis.call('SLOWLOG', 'GET', '-1')) as [number, number, number, (string | Buffer)[]][];
    redis.disconnect();
    const by = new Map<string, Cost>();
    let total = 0;
    for (const [, , usec, argv] of log) {
      const command = String(argv[0]).toLowerCase();
      if (command === 'slowlog') continue;
      const sha = command === 'evalsha' ? String(argv[1]) : '';
      const name = command === 'evalsha' ? `script ${names.get(sha) ?? `other ${sha.slice(0, 8)}`}` : command;
      const c = by.get(name) ?? { calls: 0, usec: 0 };
      c.calls++;
      c.usec += usec;
      by.set(name, c);
      // Shares are of the scripts' time (a command inside a script is in its script's time too).
      if (command === 'evalsha' || command === 'eval') total += usec;
    }
    const rows = [...by].sort((a, b) => b[1].usec - a[1].usec).slice(0, 25);
    console.log(
      `redis ${await redisCli(server.port, 'info', 'server').then((s) => /redis_version:(\S+)/.exec(s)?.[1] ?? '?')}, ${f0(jobs)} jobs per side, ${f0(log.length)} commands logged`,
    );
    console.log(
      textTable(
        rows.map(([name, c]) => [
          name,
          f0(c.calls),
          (c.calls / jobs).toFixed(2),
          (c.usec / c.calls).toFixed(1),
          total > 0 ? `${((c.usec / total) * 100).toFixed(1)} %` : '',
        ]),
        ['script / command', 'calls', 'per job (warm-up incl.)', 'us per call', 'of script time'],
      ),
    );
    return 0;
  } finally {
    await server.stop();
  }
});

// PM2 process file: `npm run build && npx pm2 start ecosystem.config.js`.
// See docs/operations.md.
//
// Why an ES module: package.json has "type": "module", so Node treats this
// .js file as ESM whatever it contains (`module.exports = …` here fails with
// "module is not defined in ES module scope"). PM2 7 loads ecosystem files
// with require(); Node >= 20.19 require()s an ES module and hands back its
// namespace object, so PM2 finds the named `apps` export. On Node 20.17/20.18
// run PM2 with NODE_OPTIONS=--experimental-require-module.
//
// Everything else (REDIS_URL, XACTLY_PREFIX, X_API_BASE_URL,
// XACTLY_ACCOUNTS_FILE, …) passes through from the environment PM2 is started
// in; nothing is configured twice. After changing the environment, apply it
// with `pm2 restart ecosystem.config.js --update-env`.
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = dirname(fileURLToPath(import.meta.url));
const cli = join(root, 'dist', 'src', 'cli', 'main.js');

/** Same rule as src/config.ts: a bad value fails loudly, naming the variable. */
function positiveInt(name, fallback) {
  const raw = process.env[name]?.trim();
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < 1) throw new Error(`${name} must be a positive integer (got ${JSON.stringify(process.env[name])})`);
  return Number(raw);
}

const workers = positiveInt('XACTLY_WORKERS', 2);

// On SIGINT/SIGTERM a worker stops taking jobs and lets in-flight X calls
// finish for up to 2 × X_TIMEOUT_MS + 5 s (src/ops/worker-process.ts), 25 s
// with the defaults. PM2 SIGKILLs after kill_timeout, so it must be longer,
// or a drain is cut short: no post is lost then, but a call that was in
// flight becomes a claim that waits for lease expiry + settle window
// (minutes) instead of being recorded now.
const gracefulMs = 2 * positiveInt('X_TIMEOUT_MS', 10_000) + 5_000;
const killTimeoutMs = gracefulMs + 5_000;

export const apps = [
  {
    name: 'xactly-worker',
    script: cli,
    args: 'worker',
    cwd: root,
    // Fork, not cluster: BullMQ workers are independent processes that pull
    // from Redis. Cluster mode shares a listening socket, which a worker has
    // none of; it only adds PM2's cluster wrapper.
    exec_mode: 'fork',
    instances: workers,
    // PM2 stops an app with SIGINT (its default; PM2_KILL_SIGNAL changes it
    // daemon-wide). The worker drains on SIGINT and SIGTERM alike; a second
    // signal makes it exit at once, so nothing here sends one.
    kill_timeout: killTimeoutMs,
    autorestart: true,
    // A worker that cannot start (Redis down, bad config) exits 1: back off
    // (100 ms, growing 1.5× per crash up to 15 s; reset after 30 s up)
    // instead of restarting in a tight loop.
    exp_backoff_restart_delay: 100,
    // pino lines carry pid and hostname; one file per app is easier to follow.
    merge_logs: true,
  },
  {
    name: 'xactly-board',
    script: cli,
    args: 'board',
    cwd: root,
    exec_mode: 'fork',
    // One HTTP server on BOARD_PORT; a second instance could not bind it, and
    // the board is read from Redis, so more would not help.
    instances: 1,
    kill_timeout: 5_000,
    autorestart: true,
    exp_backoff_restart_delay: 100,
  },
];

export default { apps };

#!/usr/bin/env node
/* global process, console */
/**
 * Checks the deployment files against the code, without a Docker engine:
 *
 *  (b) always: every command in docker-compose.yml, the Dockerfile's CMD and
 *      ecosystem.config.js is a real `xactly` command with real flags; every
 *      environment variable handed to an xactly container is one the code
 *      reads; the worker scales (no container_name, no host port) and gets
 *      a stop grace period longer than its drain window; Redis keeps AOF on
 *      and never evicts (the sentinel profile's replica too, with 3
 *      Sentinels); the Dockerfile's ENTRYPOINT exists in the build
 *      output and the image runs as a non-root user.
 *  (a) when `docker-compose` is on PATH: `docker-compose config -q` with the
 *      required variables set (and refusing to run without BOARD_PASSWORD),
 *      plus a cross-check of this script's YAML reader against PyYAML.
 *
 * Usage: node scripts/compose-check.mjs [--compose F] [--dockerfile F]
 *          [--dockerignore F] [--ecosystem F] [--no-docker-compose]
 *          [--require-docker-compose] [--json]
 * Exit 0 when every check passes, 1 otherwise. Needs `npm run build` (it asks
 * the built CLI for its commands). With CI set, a missing docker-compose is a
 * failure, not a skip.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');

/** Read by the code outside src/config.ts's schema (board command, ecosystem.config.js). */
const EXTRA_ENV = ['BOARD_HOST', 'BOARD_READ_ONLY', 'XACTLY_WORKERS'];
/** The image's services; anything else (redis) is not an xactly process. */
const XACTLY_IMAGE_HINT = 'xactly';

// ---------------------------------------------------------------------------
// A YAML reader for the subset a compose file needs: block mappings, block
// sequences of scalars, one-line flow sequences of scalars, quoted and plain
// scalars, comments. Anything else (anchors, block scalars, flow mappings,
// mappings inside sequences) is an error, never a silent misread. Plain
// scalars are typed as YAML 1.1 (PyYAML, docker-compose) types them.
// ---------------------------------------------------------------------------

export class YamlSubsetError extends Error {}

function stripComment(line) {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s[,:-]/.test(line[i - 1])) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i);
    }
  }
  return line;
}

function plainScalar(s, where) {
  if (/^[&*!|>%@`{]/.test(s)) throw new YamlSubsetError(`${where}: unsupported YAML (${s[0]}…)`);
  if (/^(true|True|TRUE|yes|Yes|YES|on|On|ON)$/.test(s)) return true;
  if (/^(false|False|FALSE|no|No|NO|off|Off|OFF)$/.test(s)) return false;
  if (/^(null|Null|NULL|~)$/.test(s)) return null;
  if (/^[-+]?(0|[1-9][0-9_]*)$/.test(s)) return Number(s.replace(/_/g, ''));
  if (/^[-+]?0[0-9]+$/.test(s) || /^0[xob]/i.test(s)) throw new YamlSubsetError(`${where}: ambiguous number ${s}; quote it`);
  if (/^[-+]?([0-9][0-9_]*)?\.[0-9]+([eE][-+]?[0-9]+)?$/.test(s)) return Number(s.replace(/_/g, ''));
  if (/^[0-9]+(:[0-5]?[0-9])+$/.test(s)) throw new YamlSubsetError(`${where}: ${s} reads as a base-60 number in YAML 1.1; quote it`);
  return s;
}

function quoted(s, where) {
  if (s[0] === "'") {
    if (!/^'(?:[^']|'')*'$/.test(s)) throw new YamlSubsetError(`${where}: bad single-quoted scalar`);
    return s.slice(1, -1).replace(/''/g, "'");
  }
  if (!/^"(?:[^"\\]|\\.)*"$/.test(s)) throw new YamlSubsetError(`${where}: bad double-quoted scalar`);
  return JSON.parse(s);
}

function scalar(s, where) {
  return s[0] === '"' || s[0] === "'" ? quoted(s, where) : plainScalar(s, where);
}

function flowItems(s, where) {
  const body = s.slice(1, -1);
  const items = [];
  let cur = '';
  let quote = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (quote) {
      cur += c;
      if (c === '\\' && quote === '"') cur += body[++i] ?? '';
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
      cur += c;
    } else if (c === '[' || c === ']' || c === '{' || c === '}') {
      throw new YamlSubsetError(`${where}: nested flow collections are not supported`);
    } else if (c === ',') {
      items.push(cur.trim());
      cur = '';
    } else cur += c;
  }
  if (quote) throw new YamlSubsetError(`${where}: unterminated quote`);
  if (cur.trim() !== '') items.push(cur.trim());
  return items.map((item) => scalar(item, where));
}

function inline(s, where) {
  if (s.startsWith('[')) {
    if (!s.endsWith(']')) throw new YamlSubsetError(`${where}: a flow sequence must end on its line`);
    return flowItems(s, where);
  }
  return scalar(s, where);
}

export function parseYamlSubset(text, file = 'yaml') {
  const lines = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const content = stripComment(raw).replace(/\s+$/, '');
    if (content.trim() === '') return;
    const where = `${file}:${i + 1}`;
    if (/^\s*\t/.test(content)) throw new YamlSubsetError(`${where}: tab in indentation`);
    if (content === '---' || content === '...') throw new YamlSubsetError(`${where}: multiple documents are not supported`);
    lines.push({ where, indent: content.search(/\S/), text: content.trim() });
  });
  let pos = 0;
  const isItem = (l) => l.text === '-' || l.text.startsWith('- ');

  function block(indent) {
    return isItem(lines[pos]) ? sequence(indent) : mapping(indent);
  }
  function mapping(indent) {
    const obj = {};
    while (pos < lines.length && lines[pos].indent === indent && !isItem(lines[pos])) {
      const { where, text: t } = lines[pos];
      const m = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[A-Za-z0-9_.$/-][^:]*?)\s*:(?:\s+(.*))?$/.exec(t);
      if (!m) throw new YamlSubsetError(`${where}: expected "key: value", got ${JSON.stringify(t)}`);
      const key = String(scalar(m[1], where));
      if (Object.hasOwn(obj, key)) throw new YamlSubsetError(`${where}: duplicate key ${key}`);
      pos++;
      const next = lines[pos];
      if (m[2] !== undefined && m[2] !== '') obj[key] = inline(m[2], where);
      else if (next && next.indent > indent) obj[key] = block(next.indent);
      else if (next && next.indent === indent && isItem(next)) obj[key] = sequence(indent);
      else obj[key] = null;
    }
    if (pos < lines.length && lines[pos].indent > indent) throw new YamlSubsetError(`${lines[pos].where}: unexpected indentation`);
    return obj;
  }
  function sequence(indent) {
    const arr = [];
    while (pos < lines.length && lines[pos].indent === indent && isItem(lines[pos])) {
      const { where, text: t } = lines[pos];
      const rest = t.slice(1).trim();
      if (rest === '' || /^[^"'[][^:]*:(\s|$)/.test(rest)) throw new YamlSubsetError(`${where}: only scalars are supported in block sequences`);
      arr.push(inline(rest, where));
      pos++;
    }
    return arr;
  }

  if (lines.length === 0) return null;
  if (lines[0].indent !== 0) throw new YamlSubsetError(`${lines[0].where}: the document must start at column 0`);
  const doc = block(0);
  if (pos < lines.length) throw new YamlSubsetError(`${lines[pos].where}: unexpected content`);
  return doc;
}

// ---------------------------------------------------------------------------
// Facts from the code
// ---------------------------------------------------------------------------

/** The variable names of src/config.ts's schema (`z.object({ NAME: ... })`). */
export function configEnvNames(source) {
  const m = /const schema = z\.object\(\{([\s\S]*?)\n\}\);/.exec(source);
  if (!m) throw new Error('src/config.ts: cannot find `const schema = z.object({ ... });`');
  const names = [...m[1].matchAll(/^ {2}([A-Z][A-Z0-9_]*):/gm)].map((x) => x[1]);
  if (names.length === 0) throw new Error('src/config.ts: no variables found in the schema');
  return names;
}

const helpCache = new Map();
/** `xactly <cmd> --help`: exit code and text, or why it could not run. */
function cliHelp(command) {
  if (!helpCache.has(command)) {
    const r = spawnSync(process.execPath, [CLI, command, '--help'], { encoding: 'utf8', timeout: 20_000, env: { PATH: process.env.PATH ?? '' } });
    helpCache.set(command, { code: r.status, text: `${r.stdout ?? ''}${r.stderr ?? ''}`, error: r.error?.message });
  }
  return helpCache.get(command);
}

/** Problems with one xactly command line (["worker"] or ["fake-x", "--port", "4010"]). */
function checkCommand(argv, where) {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    return [`${where}: command must be a list of strings (exec form), got ${JSON.stringify(argv)}`];
  }
  const [command, ...args] = argv;
  const help = cliHelp(command);
  if (help.code !== 0)
    return [`${where}: "${command}" is not an xactly command (xactly ${command} --help exited ${help.code ?? help.error}: ${help.text.trim().split('\n')[0]})`];
  const problems = [];
  for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0])) {
    if (!new RegExp(`${flag.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![\\w-])`).test(help.text)) {
      problems.push(`${where}: "xactly ${command}" has no flag ${flag} (not in \`xactly ${command} --help\`)`);
    }
  }
  return problems;
}

/** Compose durations ("40s", "1m30s", "1500ms") in ms. */
export function durationMs(v) {
  if (typeof v === 'number') return v * 1000;
  const s = String(v);
  const parts = [...s.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== s) return NaN;
  const unit = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001 };
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]], 0);
}

/** `${VAR:-default}` → default; a literal → itself; anything else → undefined. */
function literalOrDefault(v) {
  if (v === undefined || v === null) return undefined;
  const m = /^\$\{[A-Z0-9_]+:?-([^}]*)\}$/.exec(String(v));
  if (m) return m[1];
  return String(v).includes('$') ? undefined : String(v);
}

function envOf(service) {
  const env = service.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(
      env.map((e) => {
        const i = String(e).indexOf('=');
        return i < 0 ? [String(e), null] : [String(e).slice(0, i), String(e).slice(i + 1)];
      }),
    );
  return env;
}

// ---------------------------------------------------------------------------
// The checks
// ---------------------------------------------------------------------------

export function checkCompose(compose, allowedEnv) {
  const problems = [];
  const services = compose?.services;
  if (!services || typeof services !== 'object') return ['docker-compose.yml: no services'];
  for (const name of ['redis', 'worker', 'board', 'fake-x']) if (!services[name]) problems.push(`service ${name} is missing`);

  const isXactly = (s) => s.build !== undefined || String(s.image ?? '').includes(XACTLY_IMAGE_HINT);
  for (const [name, s] of Object.entries(services)) {
    if (!isXactly(s)) continue;
    if (s.entrypoint !== undefined) problems.push(`service ${name}: entrypoint overridden; the image's ENTRYPOINT runs the CLI`);
    if (s.command === undefined) problems.push(`service ${name}: no command (say which xactly command it runs)`);
    else problems.push(...checkCommand(s.command, `service ${name}`));
    for (const [key, value] of Object.entries(envOf(s))) {
      if (!allowedEnv.has(key)) problems.push(`service ${name}: environment ${key} is not read by xactly`);
      if (value !== null && typeof value !== 'string' && typeof value !== 'number')
        problems.push(`service ${name}: environment ${key} must be a string (quote it), got ${JSON.stringify(value)}`);
    }
  }

  const redis = services.redis;
  if (redis) {
    const cmd = Array.isArray(redis.command) ? redis.command.map(String) : String(redis.command ?? '').split(/\s+/);
    const opt = (flag) => {
      const i = cmd.indexOf(flag);
      return i >= 0 ? cmd[i + 1] : undefined;
    };
    if (!/^redis(:|$)/.test(String(redis.image ?? ''))) problems.push(`service redis: image should be redis:7, got ${redis.image}`);
    if (opt('--appendonly') !== 'yes') problems.push('service redis: command needs --appendonly yes (the ledger must survive a restart)');
    if (opt('--maxmemory-policy') !== 'noeviction')
      problems.push('service redis: command needs --maxmemory-policy noeviction (an evicted ledger record allows a second post)');
    if (!['everysec', 'always'].includes(opt('--appendfsync') ?? 'everysec')) problems.push('service redis: --appendfsync must be everysec or always');
    if (!(redis.volumes ?? []).some((v) => String(v).split(':')[1] === '/data')) problems.push('service redis: /data needs a volume (AOF files)');
    if (!JSON.stringify(redis.healthcheck?.test ?? '').includes('redis-cli')) problems.push('service redis: healthcheck should run redis-cli ping');
  }

  const worker = services.worker;
  if (worker) {
    if (worker.container_name !== undefined) problems.push('service worker: container_name prevents --scale worker=N');
    if (worker.ports !== undefined) problems.push('service worker: a host port prevents --scale worker=N');
    const env = envOf(worker);
    if (!/^rediss?:\/\/redis[:/]/.test(String(env.REDIS_URL ?? '')))
      problems.push(`service worker: REDIS_URL should point at the redis service, got ${env.REDIS_URL}`);
    const accounts = env.XACTLY_ACCOUNTS_FILE;
    if (!accounts) problems.push('service worker: XACTLY_ACCOUNTS_FILE is required by the worker');
    else if (
      !(worker.volumes ?? []).some((v) => {
        const [, target, mode] = String(v).split(':');
        // Read-write on purpose: a refreshed OAuth 2.0 token rotates its refresh token, which is written back.
        return (target === accounts || (target && accounts.startsWith(`${target.replace(/\/+$/, '')}/`))) && mode !== 'ro';
      })
    ) {
      problems.push(`service worker: ${accounts} must be mounted read-write (rotated OAuth 2.0 refresh tokens are written back)`);
    }
    const timeout = Number(literalOrDefault(env.X_TIMEOUT_MS) ?? 10_000);
    const drainMs = 2 * timeout + 5_000;
    const grace = durationMs(worker.stop_grace_period ?? '10s');
    if (!(grace > drainMs))
      problems.push(
        `service worker: stop_grace_period ${worker.stop_grace_period ?? '(default 10s)'} must exceed the drain window 2 × X_TIMEOUT_MS + 5 s = ${drainMs / 1000}s`,
      );
    if (worker.depends_on?.redis?.condition !== 'service_healthy') problems.push('service worker: depends_on redis with condition service_healthy');
  }

  const board = services.board;
  if (board) {
    const env = envOf(board);
    if (String(env.BOARD_HOST) !== '0.0.0.0') problems.push('service board: BOARD_HOST must be 0.0.0.0 inside the container');
    for (const v of ['BOARD_USER', 'BOARD_PASSWORD']) {
      if (!new RegExp(`^\\$\\{${v}:?\\?`).test(String(env[v] ?? '')))
        problems.push(`service board: ${v} must be required from the environment (\${${v}:?...}), never a default`);
    }
    const port = String(literalOrDefault(env.BOARD_PORT) ?? '3000');
    if (!(board.ports ?? []).some((p) => String(p).endsWith(`:${port}`))) problems.push(`service board: publish container port ${port}`);
  }

  const fake = services['fake-x'];
  if (fake && !(fake.profiles ?? []).includes('demo'))
    problems.push('service fake-x: must be under profiles: [demo] (never started against real X by default)');

  // The optional replica + Sentinel profile: the replica keeps the primary's guarantees, a quorum of Sentinels watches it.
  const replica = services['redis-replica'];
  const sentinels = Object.keys(services).filter((n) => /^sentinel-\d+$/.test(n));
  if (replica || sentinels.length > 0) {
    for (const name of ['redis-replica', ...sentinels]) {
      if (services[name] && !(services[name].profiles ?? []).includes('sentinel')) problems.push(`service ${name}: must be under profiles: [sentinel]`);
    }
    if (!replica) problems.push('service redis-replica is missing (the sentinel profile needs a replica to promote)');
    else {
      const cmd = (replica.command ?? []).map(String);
      const opt = (flag) => (cmd.indexOf(flag) >= 0 ? cmd[cmd.indexOf(flag) + 1] : undefined);
      if (opt('--replicaof') !== 'redis') problems.push('service redis-replica: command needs --replicaof redis 6379');
      if (opt('--appendonly') !== 'yes') problems.push('service redis-replica: command needs --appendonly yes (it becomes the primary)');
      if (opt('--maxmemory-policy') !== 'noeviction')
        problems.push('service redis-replica: command needs --maxmemory-policy noeviction (it becomes the primary)');
    }
    if (sentinels.length < 3) problems.push(`the sentinel profile needs 3 Sentinels (a quorum of 2 survives one), found ${sentinels.length}`);
    for (const name of sentinels) {
      if (!JSON.stringify(services[name].command ?? '').includes('--sentinel')) problems.push(`service ${name}: command must run redis-server --sentinel`);
    }
  }
  return problems;
}

export function checkDockerfile(text, { root = ROOT } = {}) {
  const problems = [];
  const instructions = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l);
      return m ? { op: m[1].toUpperCase(), arg: m[2] } : { op: l.toUpperCase(), arg: '' };
    });
  const froms = instructions.filter((i) => i.op === 'FROM');
  if (froms.length < 2) problems.push('Dockerfile: expected a multi-stage build (build stage + runtime stage)');
  for (const f of froms) if (!/^node:20-slim(\s|$)/.test(f.arg)) problems.push(`Dockerfile: FROM ${f.arg} (expected node:20-slim)`);
  const runs = instructions
    .filter((i) => i.op === 'RUN')
    .map((i) => i.arg)
    .join('\n');
  for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) if (!runs.includes(step)) problems.push(`Dockerfile: no RUN ${step}`);

  const lastFrom = instructions.lastIndexOf(froms.at(-1));
  const runtime = instructions.slice(lastFrom);
  const user = runtime.filter((i) => i.op === 'USER').at(-1)?.arg;
  if (!user || /^(root|0)(:|$)/.test(user)) problems.push('Dockerfile: the runtime stage must switch to a non-root USER');
  if (!runtime.some((i) => i.op === 'COPY' && /\bpackage\.json\b/.test(i.arg)))
    problems.push('Dockerfile: the runtime stage needs package.json ("type": "module" makes dist/*.js ESM)');

  const workdir = runtime.filter((i) => i.op === 'WORKDIR').at(-1)?.arg ?? '/';
  const execForm = (op) => {
    const i = runtime.filter((x) => x.op === op).at(-1);
    if (!i) return undefined;
    try {
      const v = JSON.parse(i.arg);
      if (Array.isArray(v) && v.every((s) => typeof s === 'string')) return v;
    } catch {
      /* shell form */
    }
    problems.push(`Dockerfile: ${op} must use the exec form (["node", ...]) so signals reach node`);
    return undefined;
  };
  const entrypoint = execForm('ENTRYPOINT');
  if (!entrypoint) {
    if (!problems.some((p) => p.includes('ENTRYPOINT'))) problems.push('Dockerfile: no ENTRYPOINT');
  } else {
    const [bin, script] = entrypoint;
    if (bin !== 'node' || !script) problems.push(`Dockerfile: ENTRYPOINT should be ["node", "<cli>"], got ${JSON.stringify(entrypoint)}`);
    else {
      // The image's WORKDIR maps to the project root: the path must be what `npm run build` produces.
      const local = script.startsWith('/') ? join(root, script.slice(workdir.replace(/\/+$/, '').length)) : join(root, script);
      if (script.startsWith('/') && !script.startsWith(workdir)) problems.push(`Dockerfile: ENTRYPOINT ${script} is outside WORKDIR ${workdir}`);
      else if (!existsSync(local)) problems.push(`Dockerfile: ENTRYPOINT ${script} does not exist in the build output (${local}); run npm run build`);
      else if (resolve(local) !== CLI) problems.push(`Dockerfile: ENTRYPOINT ${script} is not the CLI (dist/src/cli/main.js)`);
    }
  }
  const cmd = execForm('CMD');
  if (cmd) problems.push(...checkCommand(cmd, 'Dockerfile CMD'));
  return problems;
}

export function checkDockerignore(text) {
  const entries = new Set(
    text
      .split(/\r?\n/)
      .map((l) => l.trim().replace(/^\/|\/$/g, ''))
      .filter((l) => l && !l.startsWith('#')),
  );
  return ['node_modules', 'dist', 'test-artifacts', '.git', 'config']
    .filter((e) => !entries.has(e))
    .map((e) => `.dockerignore: ${e} is not excluded${e === 'config' ? ' (credentials must not be baked into the image)' : ''}`);
}

export function checkEcosystem(file) {
  const r = spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${JSON.stringify(file)}).apps))`], {
    encoding: 'utf8',
    timeout: 20_000,
    env: { PATH: process.env.PATH ?? '' },
  });
  if (r.status !== 0) return [`${file}: PM2 could not require() it: ${(r.stderr || r.error?.message || '').trim().split('\n').slice(0, 5).join(' ')}`];
  const apps = JSON.parse(r.stdout);
  const problems = [];
  for (const app of apps) {
    const args = Array.isArray(app.args)
      ? app.args
      : String(app.args ?? '')
          .split(/\s+/)
          .filter(Boolean);
    problems.push(...checkCommand(args, `ecosystem app ${app.name}`));
    if (resolve(ROOT, app.cwd ?? ROOT, app.script) !== CLI) problems.push(`ecosystem app ${app.name}: script ${app.script} is not the built CLI`);
  }
  return problems;
}

// ---------------------------------------------------------------------------
// (a) docker-compose itself
// ---------------------------------------------------------------------------

const onPath = (bin) => (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, bin)));

function dockerCompose(file, parsed) {
  const problems = [];
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' };
  const run = (env, extra = []) =>
    spawnSync('docker-compose', ['-f', file, ...extra, 'config', '-q'], { cwd: dirname(file), encoding: 'utf8', timeout: 60_000, env: { ...base, ...env } });
  const required = { BOARD_USER: 'ops', BOARD_PASSWORD: 'compose-check' };
  for (const profile of [[], ['--profile', 'demo'], ['--profile', 'sentinel']]) {
    const ok = run(required, profile);
    if (ok.status !== 0) problems.push(`docker-compose ${profile.join(' ')} config -q failed (${ok.status ?? ok.error?.message}): ${(ok.stderr || '').trim()}`);
  }
  const noPassword = run({ BOARD_USER: 'ops' });
  if (noPassword.status === 0 || !noPassword.stderr.includes('set BOARD_PASSWORD')) {
    problems.push('docker-compose config accepted the file without BOARD_PASSWORD; the board password must be required');
  }
  // The same file through PyYAML (docker-compose's own parser): the static
  // checks above saw exactly what docker-compose sees.
  const py = spawnSync('python3', ['-c', 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', file], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (py.status === 0) {
    if (!isDeepStrictEqual(JSON.parse(py.stdout), parsed))
      problems.push(`${file}: this script's YAML reader and PyYAML disagree on the file; fix the reader or simplify the YAML`);
  } else problems.push(`python3 with PyYAML (a docker-compose dependency) could not parse ${file}: ${(py.stderr || py.error?.message || '').trim()}`);
  return problems;
}

// ---------------------------------------------------------------------------

export function runChecks(opts) {
  const results = [];
  const record = (name, fn) => {
    let problems;
    try {
      problems = fn();
    } catch (err) {
      problems = [`${err instanceof YamlSubsetError ? '' : 'error: '}${err.message}`];
    }
    results.push({ check: name, ok: problems.length === 0, problems });
    return problems;
  };
  let compose;
  record('cli built', () => (existsSync(CLI) ? [] : [`${CLI} is missing: run npm run build first`]));
  record('compose yaml', () => {
    compose = parseYamlSubset(readFileSync(opts.compose, 'utf8'), opts.compose);
    return [];
  });
  if (compose) {
    record('compose vs code', () => {
      const allowed = new Set([...configEnvNames(readFileSync(join(ROOT, 'src', 'config.ts'), 'utf8')), ...EXTRA_ENV]);
      return checkCompose(compose, allowed);
    });
  }
  record('Dockerfile', () => checkDockerfile(readFileSync(opts.dockerfile, 'utf8')));
  record('.dockerignore', () => checkDockerignore(readFileSync(opts.dockerignore, 'utf8')));
  record('ecosystem.config.js', () => checkEcosystem(opts.ecosystem));
  if (opts.dockerCompose) {
    if (onPath('docker-compose')) record('docker-compose config', () => (compose ? dockerCompose(opts.compose, compose) : ['compose file unreadable']));
    else if (opts.requireDockerCompose)
      record('docker-compose config', () => ['docker-compose is not on PATH (CI installs it: apt-get install -y --no-install-recommends docker-compose)']);
    else results.push({ check: 'docker-compose config', ok: true, skipped: 'docker-compose not on PATH', problems: [] });
  }
  return results;
}

function main() {
  const { values } = parseArgs({
    options: {
      compose: { type: 'string', default: join(ROOT, 'docker-compose.yml') },
      dockerfile: { type: 'string', default: join(ROOT, 'Dockerfile') },
      dockerignore: { type: 'string', default: join(ROOT, '.dockerignore') },
      ecosystem: { type: 'string', default: join(ROOT, 'ecosystem.config.js') },
      'no-docker-compose': { type: 'boolean', default: false },
      'require-docker-compose': { type: 'boolean', default: Boolean(process.env.CI) },
      json: { type: 'boolean', default: false },
    },
  });
  const results = runChecks({
    compose: resolve(values.compose),
    dockerfile: resolve(values.dockerfile),
    dockerignore: resolve(values.dockerignore),
    ecosystem: resolve(values.ecosystem),
    dockerCompose: !values['no-docker-compose'],
    requireDockerCompose: values['require-docker-compose'],
  });
  for (const r of results) {
    if (values.json) console.log(JSON.stringify(r));
    else if (r.skipped) console.log(`skip  ${r.check}: ${r.skipped}`);
    else if (r.ok) console.log(`ok    ${r.check}`);
    else for (const p of r.problems) console.log(`FAIL  ${r.check}: ${p}`);
  }
  return results.every((r) => r.ok) ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = main();

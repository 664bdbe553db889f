/**
 * docker-compose.yml, Dockerfile, .dockerignore and ecosystem.config.js
 * against the code, through scripts/compose-check.mjs (no Docker engine
 * needed). `docker-compose config` runs when docker-compose is on PATH, and
 * its absence fails under CI (.ci/run installs it).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..');
const SCRIPT = join(ROOT, 'scripts', 'compose-check.mjs');

interface CheckResult {
  check: string;
  ok: boolean;
  skipped?: string;
  problems: string[];
}

function check(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; results: CheckResult[]; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SCRIPT, '--json', ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      try {
        resolve({
          code,
          stderr,
          results: stdout
            .trim()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as CheckResult),
        });
      } catch (err) {
        reject(new Error(`compose-check printed something else: ${stdout}\n${stderr}\n${String(err)}`));
      }
    });
  });
}

const problems = (results: CheckResult[]) => results.flatMap((r) => r.problems.map((p) => `${r.check}: ${p}`));
const hasDockerCompose = (process.env.PATH ?? '').split(':').some((d) => d && existsSync(join(d, 'docker-compose')));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xactly-compose-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Replace text that must be there, so a mutation can never silently not apply. */
function mutate(text: string, edits: [string | RegExp, string][]): string {
  for (const [from, to] of edits) {
    if (typeof from === 'string' ? !text.includes(from) : !from.test(text)) throw new Error(`mutation target not found: ${String(from)}`);
    text = text.replace(from, to);
  }
  return text;
}

describe('deployment files agree with the code', () => {
  it('compose services, env names, Dockerfile, .dockerignore and ecosystem commands all check out', async () => {
    const { code, results, stderr } = await check(['--no-docker-compose']);
    expect(problems(results), stderr).toEqual([]);
    expect(results.map((r) => r.check)).toEqual(['cli built', 'compose yaml', 'compose vs code', 'Dockerfile', '.dockerignore', 'ecosystem.config.js']);
    expect(code).toBe(0);
  });

  it('each check fails when the files drift from the code', async () => {
    const compose = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    const broken = mutate(compose, [
      ["    command: ['worker']\n", "    container_name: xactly-worker\n    command: ['wrker']\n"],
      ['    volumes:\n      - ./config:/config\n    # On SIGTERM', '    volumes:\n      - ./config:/config:ro\n    # On SIGTERM'],
      ['      LOG_LEVEL: ${LOG_LEVEL:-info}\n    # The directory', '      LOG_LEVEL: ${LOG_LEVEL:-info}\n      XACTLY_CONCURENCY: "5"\n    # The directory'],
      ["'--maxmemory-policy', 'noeviction'", "'--maxmemory-policy', 'allkeys-lru'"],
      ["'--appendonly', 'yes'", "'--appendonly', 'no'"],
      ['stop_grace_period: 40s', 'stop_grace_period: 20s'],
      ['${BOARD_PASSWORD:?set BOARD_PASSWORD}', '${BOARD_PASSWORD:-admin}'],
      ["    profiles: ['demo']\n", ''],
      ["'--lag', '5000'", "'--lag', '5000', '--latency', '10'"],
      ["      - '--replicaof'\n      - 'redis'\n", "      - '--replicaof'\n      - 'elsewhere'\n"],
      [/ {2}sentinel-3:\n {4}# Only with --profile sentinel[^\n]*\n(?: {4}#[^\n]*\n)* {4}profiles: \['sentinel'\]\n/, '  sentinel-3:\n'],
    ]);
    const dockerfile = mutate(await readFile(join(ROOT, 'Dockerfile'), 'utf8'), [
      ['ENTRYPOINT ["node", "dist/src/cli/main.js"]', 'ENTRYPOINT ["node", "dist/cli/main.js"]'],
      ['USER node\n', ''],
      ['npm run build && npm prune --omit=dev', 'npm run build'],
    ]);
    const dockerignore = mutate(await readFile(join(ROOT, '.dockerignore'), 'utf8'), [[/^config$/m, '']]);
    await writeFile(join(dir, 'docker-compose.yml'), broken);
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    await writeFile(join(dir, '.dockerignore'), dockerignore);

    const { code, results } = await check([
      '--no-docker-compose',
      '--compose',
      join(dir, 'docker-compose.yml'),
      '--dockerfile',
      join(dir, 'Dockerfile'),
      '--dockerignore',
      join(dir, '.dockerignore'),
    ]);
    expect(code).toBe(1);
    const found = problems(results).join('\n');
    for (const expected of [
      'service worker: "wrker" is not an xactly command',
      'service worker: container_name prevents --scale worker=N',
      'service worker: environment XACTLY_CONCURENCY is not read by xactly',
      'service worker: /config/accounts.json must be mounted read-write (rotated OAuth 2.0 refresh tokens are written back)',
      'service redis: command needs --maxmemory-policy noeviction',
      'service redis: command needs --appendonly yes',
      'service worker: stop_grace_period 20s must exceed the drain window 2 × X_TIMEOUT_MS + 5 s = 25s',
      'service board: BOARD_PASSWORD must be required from the environment',
      'service fake-x: must be under profiles: [demo]',
      '"xactly fake-x" has no flag --latency',
      'service redis-replica: command needs --replicaof redis 6379',
      'service sentinel-3: must be under profiles: [sentinel]',
      'Dockerfile: ENTRYPOINT dist/cli/main.js does not exist in the build output',
      'Dockerfile: the runtime stage must switch to a non-root USER',
      'Dockerfile: no RUN npm prune --omit=dev',
      '.dockerignore: config is not excluded',
    ])
      expect(found).toContain(expected);
  });

  it('refuses YAML it cannot read exactly instead of misreading it', async () => {
    const compose = await readFile(join(ROOT, 'docker-compose.yml'), 'utf8');
    await writeFile(join(dir, 'anchors.yml'), mutate(compose, [['  worker:\n', '  worker: &worker\n']]));
    const { code, results } = await check(['--no-docker-compose', '--compose', join(dir, 'anchors.yml')]);
    expect(code).toBe(1);
    expect(problems(results).join('\n')).toMatch(/compose yaml: .*anchors\.yml:\d+: unsupported YAML \(&…\)/);
  });

  // Under CI docker-compose must be there (.ci/run installs it): a missing
  // one fails this test instead of skipping it.
  it.runIf(hasDockerCompose || process.env.CI)(
    'docker-compose config accepts the file (with no profile, the demo one and the sentinel one) and requires BOARD_PASSWORD',
    async () => {
      const { results } = await check(['--require-docker-compose']);
      const dc = results.find((r) => r.check === 'docker-compose config');
      expect(dc, 'docker-compose check did not run').toBeDefined();
      expect(dc!.problems).toEqual([]);
      expect(dc!.skipped).toBeUndefined();
    },
  );
});

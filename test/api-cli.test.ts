/**
 * `xactly api-token create` and `xactly api` as shipped (the built CLI):
 * the token is printed once and only its hash is kept; the server starts
 * from the environment, refuses unknown accounts when it has an accounts
 * file, and stops on SIGTERM.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../src/api/tokens.js';
import { ACCOUNTS, dropPrefix, newRedis, REDIS_URL, uniquePrefix } from './harness.js';
import { freePort } from './support/ports.js';
import { CLI } from './support/workers.js';

function run(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const redis = newRedis();
const prefix = uniquePrefix('api-cli');
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'xactly-api-cli-'));
  const accountsFile = join(dir, 'accounts.json');
  await writeFile(accountsFile, JSON.stringify({ accounts: ACCOUNTS }));
  env = { REDIS_URL, XACTLY_PREFIX: prefix, XACTLY_ACCOUNTS_FILE: accountsFile, XACTLY_API_TOKENS_FILE: join(dir, 'tokens.json'), LOG_LEVEL: 'warn' };
});
afterAll(async () => {
  await dropPrefix(redis, prefix);
  await redis.quit();
});

describe('xactly api-token create', () => {
  it('prints a new token once, keeps only its hash, refuses a name twice and an unset file', async () => {
    const made = await run(['api-token', 'create', 'agency-app', '--accounts', 'acme,globex'], env);
    expect(made.code).toBe(0);
    const token = made.stdout.trim();
    expect(token).toMatch(/^xat_[A-Za-z0-9_-]{43}$/);
    const file = await readFile(env.XACTLY_API_TOKENS_FILE!, 'utf8');
    expect(file).not.toContain(token);
    expect(JSON.parse(file)).toEqual({ tokens: [{ name: 'agency-app', sha256: sha256Hex(token), accounts: ['acme', 'globex'] }] });

    const twice = await run(['api-token', 'create', 'agency-app'], env);
    expect(twice.code).toBe(2);
    expect(twice.stderr).toContain('already exists');
    const unset = await run(['api-token', 'create', 'x'], { ...env, XACTLY_API_TOKENS_FILE: '' });
    expect(unset.code).toBe(1);
    expect(unset.stderr).toContain('XACTLY_API_TOKENS_FILE is not set');
  });
});

describe('xactly api', () => {
  it('serves from the environment, refuses unknown accounts, stops on SIGTERM', async () => {
    const token = (await run(['api-token', 'create', 'server-test'], env)).stdout.trim();
    const port = await freePort();
    const child = spawn(process.execPath, [CLI, 'api'], { env: { ...process.env, ...env, API_PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    try {
      const lines = createInterface({ input: child.stdout });
      const first = await new Promise<string>((resolve, reject) => {
        lines.once('line', resolve);
        child.once('close', () => reject(new Error('xactly api exited before listening')));
      });
      expect(first).toBe(`api on http://127.0.0.1:${port}/v1 (OpenAPI http://127.0.0.1:${port}/v1/openapi.json)`);
      const url = `http://127.0.0.1:${port}`;
      const postIt = (accountId: string) =>
        fetch(`${url}/v1/posts`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ slotId: `cli-${accountId}`, postId: 'p1', accountId, kind: 'post', text: 'via the API', scheduledAt: '2099-01-01T00:00:00Z' }),
        });
      const ok = await postIt('acme');
      expect([ok.status, await ok.json()]).toEqual([201, { status: 'queued', slotId: 'cli-acme', postId: 'p1' }]);
      const ghost = await postIt('ghost');
      expect(ghost.status).toBe(422);
      expect(JSON.stringify(await ghost.json())).toContain('unknown account');
      expect((await fetch(`${url}/v1/openapi.json`)).status).toBe(200);
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
  });
});

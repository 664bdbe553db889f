import { watchFile, unwatchFile } from 'node:fs';
import { open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { z } from 'zod';
import { MAX_LONG_POST_WEIGHT } from '../domain/request.js';

/**
 * Credentials live with the worker, never in job data: jobs carry an account
 * id and the worker resolves it here.
 */
export type AccountAuth =
  | { readonly type: 'oauth1'; readonly appKey: string; readonly appSecret: string; readonly accessToken: string; readonly accessSecret: string }
  | {
      readonly type: 'oauth2';
      readonly accessToken: string;
      /** With a refresh token and client id, expiring tokens are refreshed (and rotated) by the worker. */
      readonly refreshToken?: string;
      readonly clientId?: string;
      readonly clientSecret?: string;
      /** When the access token expires (ms since epoch). */
      readonly expiresAt?: number;
    };

export interface Account {
  readonly id: string;
  /** The X user id of the account (for timeline lookups). */
  readonly userId: string;
  readonly auth: AccountAuth;
  /**
   * Overrides of the default publishing budget per window, and the longest
   * post the account may publish in weighted characters (`textLength`,
   * default 280; long-post accounts up to 25,000).
   */
  readonly limits?: { readonly post?: number; readonly dm?: number; readonly textLength?: number };
}

/**
 * Where the worker finds credentials. The accounts file is the default; an
 * app that keeps tokens in its own database implements this interface.
 * `get` must return current data (it is called before every X request).
 */
export interface CredentialStore {
  get(accountId: string): Promise<Account | undefined>;
  /** Ids of every known account (for validating requests at enqueue time). */
  ids(): Promise<readonly string[]>;
  /** Persist an account whose tokens were refreshed (the refresh token rotates). */
  update?(account: Account): Promise<void>;
}

const secret = z.string().min(1, 'must not be empty');
const accountSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -'),
  userId: z.string().regex(/^\d+$/, 'must be a numeric X user id'),
  auth: z.discriminatedUnion(
    'type',
    [
      z.object({ type: z.literal('oauth1'), appKey: secret, appSecret: secret, accessToken: secret, accessSecret: secret }).strict(),
      z
        .object({
          type: z.literal('oauth2'),
          accessToken: secret,
          refreshToken: secret.optional(),
          clientId: secret.optional(),
          clientSecret: secret.optional(),
          expiresAt: z.number().int().positive().optional(),
        })
        .strict(),
    ],
    { error: 'auth.type must be "oauth1" or "oauth2"' },
  ),
  limits: z
    .object({
      post: z.number().int().positive().optional(),
      dm: z.number().int().positive().optional(),
      textLength: z
        .number()
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(MAX_LONG_POST_WEIGHT, `must be at most ${MAX_LONG_POST_WEIGHT} (X's longest posts)`)
        .optional(),
    })
    .strict()
    .optional(),
});
const fileSchema = z.object({ accounts: z.array(accountSchema) });

export class CredentialsError extends Error {
  readonly code = 'CREDENTIALS_INVALID';
  override name = 'CredentialsError';
}

/** Parse an accounts document; errors name the path, never a value. */
export function parseAccounts(doc: unknown, source = 'accounts'): Account[] {
  const parsed = fileSchema.safeParse(doc);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'} ${i.message}`);
    throw new CredentialsError(`${source}: ${issues.join('; ')}`);
  }
  const seen = new Set<string>();
  for (const a of parsed.data.accounts) {
    if (seen.has(a.id)) throw new CredentialsError(`${source}: account id "${a.id}" appears twice`);
    seen.add(a.id);
  }
  return parsed.data.accounts;
}

/** An in-memory store; `onUpdate` lets an app persist rotated tokens its own way. */
export function memoryCredentialStore(
  accounts: readonly Account[],
  onUpdate?: (a: Account) => Promise<void>,
): CredentialStore & { update(account: Account): Promise<void>; replace(accounts: readonly Account[]): string[] } {
  let byId = new Map(accounts.map((a) => [a.id, a]));
  return {
    get: async (id) => byId.get(id),
    ids: async () => [...byId.keys()],
    async update(account) {
      byId.set(account.id, account);
      await onUpdate?.(account);
    },
    /** Swap in a new set of accounts; returns the ids whose credentials changed. */
    replace(next) {
      const changed = next.filter((a) => JSON.stringify(byId.get(a.id)) !== JSON.stringify(a)).map((a) => a.id);
      byId = new Map(next.map((a) => [a.id, a]));
      return changed;
    },
  };
}

export const staticCredentialStore = (accounts: readonly Account[]): CredentialStore => memoryCredentialStore(accounts);

async function readAccountsFile(path: string): Promise<Account[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CredentialsError(`XACTLY_ACCOUNTS_FILE ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CredentialsError(`XACTLY_ACCOUNTS_FILE ${path} is not valid JSON`);
  }
  return parseAccounts(doc, path);
}

/** An exclusive lock file; one left behind by a dead process is taken over after 10 s. */
async function withFileLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const until = Date.now() + 15_000;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.close();
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const age = await stat(lockPath).then(
        (s) => Date.now() - s.mtimeMs,
        () => 0,
      );
      if (age > 10_000) await unlink(lockPath).catch(() => undefined);
      else if (Date.now() > until) throw new CredentialsError(`${lockPath} is held by another process`);
      else await new Promise((r) => setTimeout(r, 25));
    }
  }
  try {
    return await fn();
  } finally {
    await unlink(lockPath).catch(() => undefined);
  }
}

export interface FileCredentialStore extends CredentialStore {
  /** Re-read the file (on SIGHUP); returns the ids whose credentials changed. A bad file keeps the old accounts. */
  reload(): Promise<string[]>;
  /** Re-read whenever the file changes (polled); `onChange` gets the changed ids or the error. */
  watch(onChange: (changed: string[] | Error) => void, intervalMs?: number): void;
  close(): void;
}

/**
 * The accounts file as a credential store: read at start, re-read on demand
 * or when it changes, and rewritten atomically when a token is refreshed.
 */
export async function fileCredentialStore(path: string): Promise<FileCredentialStore> {
  const mem = memoryCredentialStore(await readAccountsFile(path));
  let writing = Promise.resolve();
  let watching = false;
  const reload = async () => mem.replace(await readAccountsFile(path));
  return {
    get: mem.get,
    ids: mem.ids,
    reload,
    async update(account) {
      await mem.update(account);
      // Several processes may share the file: read-modify-write under a lock
      // file, changing only this account, so another process's freshly
      // rotated tokens are never overwritten with a stale copy. Write, then
      // rename, so a reader never sees half a file.
      writing = writing.then(() =>
        withFileLock(`${path}.lock`, async () => {
          const onDisk = await readAccountsFile(path).catch(() => [] as Account[]);
          const next = onDisk.some((a) => a.id === account.id) ? onDisk.map((a) => (a.id === account.id ? account : a)) : [...onDisk, account];
          const tmp = `${path}.${process.pid}.tmp`;
          await writeFile(tmp, JSON.stringify({ accounts: next }, null, 2) + '\n', { mode: 0o600 });
          await rename(tmp, path);
        }),
      );
      await writing;
    },
    watch(onChange, intervalMs = 1_000) {
      watching = true;
      watchFile(path, { interval: intervalMs, persistent: false }, () => {
        reload().then(onChange, (err: Error) => onChange(err));
      });
    },
    close() {
      if (watching) unwatchFile(path);
    },
  };
}

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * HTTP API tokens. The tokens file holds only each token's SHA-256 (hex),
 * its name and optionally the accounts it may touch:
 * `{"tokens":[{"name","sha256","accounts"?}]}`. A token is shown once, when
 * it is made, and never stored; the name is what the audit trail records.
 */
export class TokensFileError extends Error {
  readonly code = 'API_TOKENS_INVALID';
  override name = 'TokensFileError';
}

/** What a request's token is allowed: its name, and the accounts it may touch (undefined: all). */
export interface TokenGrant {
  readonly name: string;
  readonly accounts?: ReadonlySet<string>;
}

export const TOKEN_NAME = /^[A-Za-z0-9_.-]{1,64}$/;
const ACCOUNT_ID = /^[A-Za-z0-9_.-]{1,64}$/;

const fileSchema = z
  .object({
    tokens: z.array(
      z
        .object({
          name: z.string().regex(TOKEN_NAME, 'must be 1-64 letters, digits, _ . -'),
          sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be the hex SHA-256 of the token (64 lowercase hex digits)'),
          accounts: z.array(z.string().regex(ACCOUNT_ID, 'must be account ids')).optional(),
        })
        .strict(),
    ),
  })
  .strict();

export type TokensFile = z.infer<typeof fileSchema>;

export const sha256Hex = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** A new token: 32 random bytes, base64url, with a prefix that says what it is (and lets secret scanners spot it). */
export function newToken(): string {
  return `xat_${randomBytes(32).toString('base64url')}`;
}

export function parseTokensFile(text: string, where: string): TokensFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TokensFileError(`${where} is not JSON (${(err as Error).message})`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new TokensFileError(`${where}: ${first.path.join('.') || '(file)'} ${first.message}`);
  }
  const names = new Set<string>();
  for (const t of parsed.data.tokens) {
    if (names.has(t.name)) throw new TokensFileError(`${where}: token name "${t.name}" appears twice`);
    names.add(t.name);
  }
  return parsed.data;
}

/**
 * The tokens of a file, looked up by the presented token's hash. Every
 * entry is compared, with a constant-time compare, whatever matched: the
 * time taken says nothing about which hashes exist. The file is read again
 * when it changes (checked at most once a second), so `xactly api-token
 * create` takes effect without a restart.
 */
export interface TokenStore {
  /** The grant of a presented token, or undefined for an unknown one. */
  verify(token: string): Promise<TokenGrant | undefined>;
  readonly size: number;
}

export function tokenStoreOf(file: TokensFile): TokenStore & { replace(file: TokensFile): void } {
  let entries: { digest: Buffer; grant: TokenGrant }[] = [];
  const replace = (f: TokensFile) => {
    entries = f.tokens.map((t) => ({
      digest: Buffer.from(t.sha256, 'hex'),
      grant: { name: t.name, ...(t.accounts && { accounts: new Set(t.accounts) }) },
    }));
  };
  replace(file);
  return {
    replace,
    get size() {
      return entries.length;
    },
    async verify(token) {
      const given = createHash('sha256').update(token, 'utf8').digest();
      let found: TokenGrant | undefined;
      for (const e of entries) if (timingSafeEqual(given, e.digest) && !found) found = e.grant;
      return found;
    },
  };
}

export async function fileTokenStore(path: string, opts: { recheckMs?: number; clock?: () => number } = {}): Promise<TokenStore> {
  const recheckMs = opts.recheckMs ?? 1_000;
  const clock = opts.clock ?? Date.now;
  const readText = () =>
    readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new TokensFileError(
        `cannot read XACTLY_API_TOKENS_FILE ${path} (${err.code ?? err.message}); create a token with \`xactly api-token create NAME\``,
      );
    });
  // The file's text, not its mtime, says whether it changed: two writes
  // within one kernel clock tick share an mtime (the race a fast
  // `api-token create` right after start met in CI).
  let text = await readText();
  const store = tokenStoreOf(parseTokensFile(text, path));
  let checkedAt = clock();
  let checking: Promise<void> | undefined;
  const recheck = async () => {
    const now = await readText().catch(() => undefined);
    if (now === undefined || now === text) return;
    // A bad edit keeps the tokens in force; the next good write replaces them.
    try {
      store.replace(parseTokensFile(now, path));
      text = now;
    } catch {
      // kept: the tokens in force
    }
  };
  return {
    get size() {
      return store.size;
    },
    async verify(token) {
      if (clock() - checkedAt >= recheckMs) {
        checkedAt = clock();
        checking ??= recheck().finally(() => (checking = undefined));
      }
      if (checking) await checking;
      return store.verify(token);
    },
  };
}

/**
 * Add a token to the file (made when missing), written atomically (a
 * temporary file renamed over it, mode 0600). Returns the token: the only
 * time it exists outside the caller's hands.
 */
export async function createToken(path: string, name: string, accounts?: readonly string[]): Promise<string> {
  if (!TOKEN_NAME.test(name)) throw new TokensFileError(`token name must be 1-64 letters, digits, _ . - (got ${JSON.stringify(name)})`);
  for (const a of accounts ?? []) if (!ACCOUNT_ID.test(a)) throw new TokensFileError(`--accounts must be account ids (got ${JSON.stringify(a)})`);
  const existing = await readFile(path, 'utf8').then(
    (text) => parseTokensFile(text, path),
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return { tokens: [] } as TokensFile;
      throw new TokensFileError(`cannot read ${path} (${err.code ?? err.message})`);
    },
  );
  if (existing.tokens.some((t) => t.name === name)) throw new TokensFileError(`a token named "${name}" already exists in ${path}`);
  const token = newToken();
  const next: TokensFile = { tokens: [...existing.tokens, { name, sha256: sha256Hex(token), ...(accounts?.length && { accounts: [...accounts] }) }] };
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, JSON.stringify(next, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  await rename(tmp, path);
  return token;
}

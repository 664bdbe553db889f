import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/**
 * Credentials live with the worker, never in job data: jobs carry an account
 * id and the worker resolves it here.
 */
export type AccountAuth =
  | { readonly type: 'oauth1'; readonly appKey: string; readonly appSecret: string; readonly accessToken: string; readonly accessSecret: string }
  | { readonly type: 'oauth2'; readonly accessToken: string };

export interface Account {
  readonly id: string;
  /** The X user id of the account (for timeline lookups). */
  readonly userId: string;
  readonly auth: AccountAuth;
  /** Overrides of the default publishing budget per window. */
  readonly limits?: { readonly post?: number; readonly dm?: number };
}

export interface CredentialStore {
  get(accountId: string): Promise<Account | undefined>;
  /** Ids of every known account (for validating requests at enqueue time). */
  ids(): Promise<readonly string[]>;
}

const secret = z.string().min(1, 'must not be empty');
const accountSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits, _ . -'),
  userId: z.string().regex(/^\d+$/, 'must be a numeric X user id'),
  auth: z.discriminatedUnion('type', [
    z.object({ type: z.literal('oauth1'), appKey: secret, appSecret: secret, accessToken: secret, accessSecret: secret }),
    z.object({ type: z.literal('oauth2'), accessToken: secret }),
  ], { error: 'auth.type must be "oauth1" or "oauth2"' }),
  limits: z.object({ post: z.number().int().positive().optional(), dm: z.number().int().positive().optional() }).strict().optional(),
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

export function staticCredentialStore(accounts: readonly Account[]): CredentialStore {
  const byId = new Map(accounts.map((a) => [a.id, a]));
  return {
    get: async (id) => byId.get(id),
    ids: async () => [...byId.keys()],
  };
}

export async function fileCredentialStore(path: string): Promise<CredentialStore> {
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
  return staticCredentialStore(parseAccounts(doc, path));
}

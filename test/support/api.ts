/**
 * The HTTP API for tests and benchmarks: the real server (src/api) over a
 * producer of the test's own, tokens made with the real `createToken` in a
 * tokens file of the test's own, and a client that checks every answer
 * against the served OpenAPI document.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApiServer, type ApiServer, type ApiServerOptions } from '../../src/api/server.js';
import { OPENAPI } from '../../src/api/openapi.js';
import { createToken, fileTokenStore } from '../../src/api/tokens.js';
import { apiContract } from './openapi.js';

export interface ApiAnswer {
  readonly status: number;
  readonly body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- a JSON answer, checked against the document
  readonly headers: Headers;
  /** What the OpenAPI document says is wrong with this answer (empty: nothing). */
  readonly contractErrors: string[];
}

export interface CallOptions {
  readonly token?: string;
  /** Sent as JSON. */
  readonly json?: unknown;
  /** Sent as is (with `type`, default application/json). */
  readonly raw?: string | Uint8Array;
  readonly type?: string;
  readonly headers?: Record<string, string>;
}

export interface TestApi {
  readonly url: string;
  readonly server: ApiServer;
  readonly tokensFile: string;
  /** Token by name. */
  readonly tokens: Record<string, string>;
  call(method: string, path: string, opts?: CallOptions): Promise<ApiAnswer>;
  /** Every contract error seen so far (a test asserts it stays empty). */
  readonly contractErrors: string[];
  close(): Promise<void>;
}

const contract = apiContract(OPENAPI);

export async function startApi(
  opts: Omit<ApiServerOptions, 'tokens' | 'limits'> & {
    readonly tokens: Record<string, readonly string[] | undefined>;
    readonly limits?: Partial<ApiServerOptions['limits']>;
  },
): Promise<TestApi> {
  const dir = await mkdtemp(join(tmpdir(), 'xactly-api-'));
  const tokensFile = join(dir, 'tokens.json');
  const tokens: Record<string, string> = {};
  for (const [name, accounts] of Object.entries(opts.tokens)) tokens[name] = await createToken(tokensFile, name, accounts);
  const server = createApiServer({
    ...opts,
    tokens: await fileTokenStore(tokensFile),
    limits: { bodyLimitBytes: 1_048_576, maxBatch: 1_000, rateLimit: 1_000_000, rateWindowMs: 60_000, ...opts.limits },
  });
  const { url } = await server.listen(0);
  const contractErrors: string[] = [];
  return {
    url,
    server,
    tokensFile,
    tokens,
    contractErrors,
    async call(method, path, o = {}) {
      const body = o.raw ?? (o.json !== undefined ? JSON.stringify(o.json) : undefined);
      const res = await fetch(url + path, {
        method,
        headers: {
          ...(o.token && { authorization: `Bearer ${o.token}` }),
          ...(body !== undefined && { 'content-type': o.type ?? 'application/json' }),
          ...o.headers,
        },
        ...(body !== undefined && { body }),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text === '' ? undefined : JSON.parse(text);
      } catch {
        // not JSON: the contract check says so
      }
      const errors = contract.check(method, path, res.status, res.headers.get('content-type') ?? undefined, parsed);
      contractErrors.push(...errors);
      return { status: res.status, body: parsed, headers: res.headers, contractErrors: errors };
    },
    async close() {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A path segment as a client must send it. */
export const seg = encodeURIComponent;
